# Service accounts, one per kind of caller, and the only project-level roles they get.
# Resource-level grants (a queue, a topic, a bucket, a secret, a service) live beside
# the resource, in the module that makes it; terraform/README.md lists them all.

locals {
  accounts = {
    bridge      = "coursegen bridge: ingests requests, advances courses, enqueues tasks"
    invoker     = "coursegen task invoker: the OIDC identity Cloud Tasks and Eventarc call steps with"
    steps       = "coursegen step services: run one pipeline step each"
    scheduler   = "coursegen scheduler: calls the bridge's /reconcile"
    pubsub-push = "coursegen Pub/Sub push: the OIDC identity of push deliveries to the bridge"
    builder     = "coursegen builder: Cloud Build identity that builds the functions"
  }

  # Project-level roles: only those that have no narrower resource to bind to.
  project_roles = {
    # The event store and projections are Firestore documents; Firestore IAM is per database at most.
    "bridge/datastore" = { account = "bridge", role = "roles/datastore.user" }
    "steps/datastore"  = { account = "steps", role = "roles/datastore.user" }
    # Cloud Build writes build logs.
    "builder/logs" = { account = "builder", role = "roles/logging.logWriter" }
  }

  project_roles_legacy = var.legacy_trigger_enabled ? {
    # Eventarc delivers Firestore events to the legacy function as the invoker account.
    "invoker/eventarc" = { account = "invoker", role = "roles/eventarc.eventReceiver" }
  } : {}
}

resource "google_service_account" "this" {
  for_each = local.accounts

  project      = var.project_id
  account_id   = "${var.name_prefix}-${each.key}"
  display_name = "${var.name_prefix} ${each.key}"
  description  = each.value
}

resource "google_project_iam_member" "this" {
  for_each = merge(local.project_roles, local.project_roles_legacy)

  project = var.project_id
  role    = each.value.role
  member  = google_service_account.this[each.value.account].member
}

# The bridge names the invoker account in each task's oidc_token: that needs actAs on
# this one account, not serviceAccountUser on the project.
resource "google_service_account_iam_member" "bridge_acts_as_invoker" {
  service_account_id = google_service_account.this["invoker"].name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.this["bridge"].member
}

# Pub/Sub mints the push OIDC tokens as the pubsub-push account (needed for projects
# created before April 2021, harmless after).
resource "google_service_account_iam_member" "pubsub_agent_mints_push_tokens" {
  service_account_id = google_service_account.this["pubsub-push"].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${var.pubsub_service_agent}"
}
