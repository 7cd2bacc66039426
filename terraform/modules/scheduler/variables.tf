variable "project_id" {
  description = "Project of the job."
  type        = string
}

variable "region" {
  description = "Region of the job."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the job name."
  type        = string
}

variable "bridge_url" {
  description = "HTTPS URL of the bridge (no trailing slash)."
  type        = string
}

variable "service_account_email" {
  description = "Account whose OIDC token the job sends (has run.invoker on the bridge)."
  type        = string
}

variable "schedule" {
  description = "Cron schedule of the reconciler."
  type        = string
  default     = "*/5 * * * *"
}

variable "attempt_deadline_seconds" {
  description = "How long one reconcile call may take (15-1800)."
  type        = number
  default     = 300
}
