output "secret_ids" {
  description = "Secret id by provider (gemini, openai)."
  value       = { for key, secret in google_secret_manager_secret.this : key => secret.secret_id }
}
