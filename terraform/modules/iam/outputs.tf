output "emails" {
  description = "Service account email by kind: bridge, invoker, steps, scheduler, pubsub-push, builder."
  value       = { for kind, account in google_service_account.this : kind => account.email }
}

output "members" {
  description = "IAM member string (serviceAccount:EMAIL) by kind."
  value       = { for kind, account in google_service_account.this : kind => account.member }
}

output "ids" {
  description = "Fully qualified service account names (projects/P/serviceAccounts/EMAIL) by kind."
  value       = { for kind, account in google_service_account.this : kind => account.id }
}
