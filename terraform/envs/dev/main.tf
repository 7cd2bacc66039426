# Development environment: small, cheap to tear down, offline AI provider by default.

provider "google" {
  project = var.project_id
  region  = var.region
}

module "coursegen" {
  source = "../../modules/coursegen"

  project_id         = var.project_id
  environment        = "dev"
  region             = var.region
  firestore_location = var.firestore_location
  source_dir         = "${path.root}/../../.."

  rollout_percent        = var.rollout_percent
  legacy_trigger_enabled = var.legacy_trigger_enabled
  ai_provider            = var.ai_provider
  operators              = var.operators
  fetch_allowed_hosts    = var.fetch_allowed_hosts
  tenant_limits          = var.tenant_limits
  alert_email            = var.alert_email

  step_max_instances               = 3
  max_delivery_attempts            = 5
  force_destroy_buckets            = true
  firestore_delete_protection      = false
  firestore_point_in_time_recovery = false
}
