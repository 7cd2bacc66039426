# Production environment: protected data, warm bridge, real AI providers.

provider "google" {
  project = var.project_id
  region  = var.region
}

module "coursegen" {
  source = "../../modules/coursegen"

  project_id         = var.project_id
  environment        = "prod"
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
  notification_channels  = var.notification_channels

  step_max_instances = 20
  bridge_resources = {
    memory          = "512Mi"
    cpu             = 1
    timeout_seconds = 300
    concurrency     = 40
    min_instances   = 1
    max_instances   = 20
  }
  max_delivery_attempts            = 10
  force_destroy_buckets            = false
  firestore_delete_protection      = true
  firestore_point_in_time_recovery = true
}
