output "database" {
  description = "Database name."
  value       = google_firestore_database.this.name
}

output "location" {
  description = "Database location (the region Firestore events are emitted from)."
  value       = google_firestore_database.this.location_id
}
