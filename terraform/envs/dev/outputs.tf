output "bridge_uri" {
  description = "HTTPS URL of the bridge."
  value       = module.coursegen.bridge_uri
}

output "step_uris" {
  description = "HTTPS URL of each step service."
  value       = module.coursegen.step_uris
}

output "queues" {
  description = "Cloud Tasks queue names."
  value       = module.coursegen.queues
}

output "topics" {
  description = "Pub/Sub topics."
  value       = module.coursegen.topics
}

output "dead_letter_subscriptions" {
  description = "Where dead-lettered messages wait."
  value       = module.coursegen.dead_letter_subscriptions
}

output "artifacts_uri" {
  description = "COURSEGEN_ARTIFACTS."
  value       = module.coursegen.artifacts_uri
}

output "secret_ids" {
  description = "Secrets to add the AI keys to."
  value       = module.coursegen.secret_ids
}

output "service_accounts" {
  description = "Service account emails by kind."
  value       = module.coursegen.service_accounts
}

output "source_object" {
  description = "Source zip this apply deployed."
  value       = module.coursegen.source_object
}

output "rollout" {
  description = "Current transport split."
  value       = module.coursegen.rollout
}
