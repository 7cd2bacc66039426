terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  # Partial configuration: the bucket and prefix come from
  # `terraform init -backend-config=backend.hcl` (see terraform/README.md).
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = "2.7.1"
    }
  }
}
