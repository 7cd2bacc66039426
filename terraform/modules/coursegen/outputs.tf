output "bridge_uri" {
  description = "HTTPS URL of the bridge."
  value       = module.services.bridge_uri
}

output "step_uris" {
  description = "HTTPS URL of each step service."
  value       = module.services.step_uris
}

output "queues" {
  description = "Cloud Tasks queue names."
  value       = module.queues.queue_names
}

output "topics" {
  description = "Pub/Sub topic names."
  value       = module.pubsub.topics
}

output "dead_letter_subscriptions" {
  description = "Where dead-lettered messages wait."
  value       = module.pubsub.dead_letter_subscriptions
}

output "artifacts_uri" {
  description = "COURSEGEN_ARTIFACTS."
  value       = module.storage.artifacts_uri
}

output "secret_ids" {
  description = "Secret ids to add the AI keys to (gcloud secrets versions add)."
  value       = module.secrets.secret_ids
}

output "service_accounts" {
  description = "Service account emails by kind."
  value       = module.iam.emails
}

output "source_object" {
  description = "Source zip of this deployment in the source bucket."
  value       = module.services.source_object
}

output "rollout" {
  description = "Current transport split."
  value       = module.rollout.bridge_env
}
