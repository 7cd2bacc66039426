# One coursegen deployment in one project: wires the modules beside this one.
# terraform/envs/<env> call it with the sizes and knobs of that environment.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  labels = merge(var.labels, { app = "coursegen", env = var.environment })

  pubsub_service_agent = "service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

module "rollout" {
  source = "../rollout"

  rollout_percent        = var.rollout_percent
  legacy_trigger_enabled = var.legacy_trigger_enabled
}

module "iam" {
  source = "../iam"

  project_id             = var.project_id
  name_prefix            = var.name_prefix
  pubsub_service_agent   = local.pubsub_service_agent
  legacy_trigger_enabled = module.rollout.legacy_trigger_enabled
}

module "storage" {
  source = "../storage"

  project_id    = var.project_id
  name_prefix   = var.name_prefix
  location      = var.region
  labels        = local.labels
  force_destroy = var.force_destroy_buckets

  artifact_writers = { steps = module.iam.members.steps }
  artifact_readers = { bridge = module.iam.members.bridge }
  source_readers   = { builder = module.iam.members.builder }
}

module "firestore" {
  source = "../firestore"

  project_id             = var.project_id
  location               = var.firestore_location
  delete_protection      = var.firestore_delete_protection
  point_in_time_recovery = var.firestore_point_in_time_recovery
}

module "secrets" {
  source = "../secrets"

  project_id  = var.project_id
  name_prefix = var.name_prefix
  labels      = local.labels
  # The step services share one account; only AI steps mount the keys (services module).
  accessors = { steps = module.iam.members.steps }
}

module "queues" {
  source = "../queues"

  project_id       = var.project_id
  region           = var.region
  enqueuer_members = { bridge = module.iam.members.bridge }
}

module "services" {
  source = "../services"

  project_id                 = var.project_id
  region                     = var.region
  name_prefix                = var.name_prefix
  labels                     = local.labels
  source_dir                 = var.source_dir
  source_bucket              = module.storage.source_bucket
  service_accounts           = module.iam.emails
  builder_service_account_id = module.iam.ids.builder
  artifacts_uri              = module.storage.artifacts_uri
  events_topic               = module.pubsub.topics["course-events"]
  dead_letter_topic          = module.pubsub.dead_letter_topics["course-requests"]
  operators                  = var.operators
  rollout_env                = module.rollout.bridge_env
  legacy_trigger_enabled     = module.rollout.legacy_trigger_enabled
  firestore_location         = module.firestore.location
  firestore_database         = module.firestore.database
  secret_ids                 = module.secrets.secret_ids
  ai_provider                = var.ai_provider
  fetch_allowed_hosts        = var.fetch_allowed_hosts
  max_video_bytes            = var.max_video_bytes
  max_video_seconds          = var.max_video_seconds
  reconcile_quiet_seconds    = var.reconcile_quiet_seconds
  tenant_limits              = var.tenant_limits
  ingress_settings           = var.ingress_settings
  step_max_instances         = var.step_max_instances
  bridge_resources           = var.bridge_resources
}

module "pubsub" {
  source = "../pubsub"

  project_id                 = var.project_id
  labels                     = local.labels
  bridge_url                 = module.services.bridge_uri
  push_service_account_email = module.iam.emails["pubsub-push"]
  pubsub_service_agent       = local.pubsub_service_agent
  max_delivery_attempts      = var.max_delivery_attempts

  events_publishers = {
    bridge = module.iam.members.bridge
    steps  = module.iam.members.steps
  }
  dead_letter_publishers = { bridge = module.iam.members.bridge }
}

module "scheduler" {
  source = "../scheduler"

  project_id            = var.project_id
  region                = var.region
  name_prefix           = var.name_prefix
  bridge_url            = module.services.bridge_uri
  service_account_email = module.iam.emails.scheduler
  schedule              = var.reconcile_schedule
}

module "monitoring" {
  source = "../monitoring"

  project_id                = var.project_id
  name_prefix               = var.name_prefix
  dead_letter_subscriptions = module.pubsub.dead_letter_subscriptions
  max_delivery_attempts     = var.max_delivery_attempts
  failure_ratio_threshold   = var.failure_ratio_threshold
  notification_channels     = var.notification_channels
  alert_email               = var.alert_email
}
