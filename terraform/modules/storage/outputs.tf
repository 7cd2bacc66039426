output "artifacts_bucket" {
  description = "Name of the artifacts bucket."
  value       = google_storage_bucket.artifacts.name
}

output "artifacts_uri" {
  description = "COURSEGEN_ARTIFACTS: gs://BUCKET/artifacts."
  value       = "gs://${google_storage_bucket.artifacts.name}/artifacts"
}

output "source_bucket" {
  description = "Name of the bucket holding function source zips."
  value       = google_storage_bucket.source.name
}
