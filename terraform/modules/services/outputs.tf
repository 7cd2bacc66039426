output "bridge_uri" {
  description = "HTTPS URL of the bridge."
  value       = google_cloudfunctions2_function.bridge.service_config[0].uri
}

output "bridge_name" {
  description = "Name of the bridge function (and of its Cloud Run service)."
  value       = google_cloudfunctions2_function.bridge.name
}

output "step_uris" {
  description = "HTTPS URL of each step service (COURSEGEN_STEP_URLS)."
  value       = { for name, fn in google_cloudfunctions2_function.step : name => fn.service_config[0].uri }
}

output "step_function_names" {
  description = "Function name of each step."
  value       = local.step_function_names
}

output "source_object" {
  description = "Source zip the functions were built from (gs://SOURCE_BUCKET/OBJECT)."
  value       = google_storage_bucket_object.source.name
}
