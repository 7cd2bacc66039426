# Firestore (native mode): the event store, the course head documents and their indexes.

resource "google_firestore_database" "this" {
  project                           = var.project_id
  name                              = "(default)"
  location_id                       = var.location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "PESSIMISTIC"
  point_in_time_recovery_enablement = var.point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  delete_protection_state           = var.delete_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # The event log is the only source of truth: never drop it with a terraform destroy.
  deletion_policy = "ABANDON"
}

# The reconciler asks for "non-terminal courses quiet since T":
#   courses WHERE status IN (...) AND updated_at < T ORDER BY updated_at
resource "google_firestore_index" "courses_status_updated_at" {
  project     = var.project_id
  database    = google_firestore_database.this.name
  collection  = "courses"
  query_scope = "COLLECTION"

  fields {
    field_path = "status"
    order      = "ASCENDING"
  }

  fields {
    field_path = "updated_at"
    order      = "ASCENDING"
  }
}

# Legacy transport documents delete themselves once done. No single-field index on the
# TTL timestamp: monotonically growing indexed values hot-spot writes, and nothing queries it.
resource "google_firestore_field" "legacy_steps_expire_at" {
  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = "legacy_steps"
  field      = "expire_at"

  ttl_config {}

  index_config {}
}
