variable "project_id" {
  description = "Project to deploy into (one environment per project: topic names are fixed)."
  type        = string
}

variable "environment" {
  description = "Environment name, used in labels (dev, prod)."
  type        = string
}

variable "region" {
  description = "Region of the functions, queues, scheduler and buckets."
  type        = string
  default     = "europe-west1"
}

variable "firestore_location" {
  description = "Firestore location (e.g. eur3 or europe-west1). Fixed once the database exists."
  type        = string
  default     = "eur3"
}

variable "name_prefix" {
  description = "Prefix of service, account and bucket names."
  type        = string
  default     = "coursegen"
}

variable "labels" {
  description = "Extra labels on labelled resources."
  type        = map(string)
  default     = {}
}

variable "source_dir" {
  description = "Root of the repository to deploy."
  type        = string
}

variable "rollout_percent" {
  description = "Percent of new courses on the Cloud Tasks transport (0-100)."
  type        = number
  default     = 100
}

variable "legacy_trigger_enabled" {
  description = "Deploy the legacy Firestore-triggered transport."
  type        = bool
  default     = false
}

variable "ai_provider" {
  description = "COURSEGEN_PROVIDER for the AI steps: offline | gemini | openai."
  type        = string
  default     = "gemini"
}

variable "operators" {
  description = "IAM members allowed to call the bridge's operator routes, by a static key."
  type        = map(string)
  default     = {}
}

variable "fetch_allowed_hosts" {
  description = "Hosts exempt from the SSRF guard when fetching videos."
  type        = list(string)
  default     = []
}

variable "max_video_bytes" {
  description = "Largest accepted video."
  type        = number
  default     = 4294967296
}

variable "max_video_seconds" {
  description = "Longest accepted video."
  type        = number
  default     = 14400
}

variable "reconcile_quiet_seconds" {
  description = "A non-terminal course quiet this long is advanced by the reconciler."
  type        = number
  default     = 300
}

variable "reconcile_schedule" {
  description = "Cron schedule of the reconciler."
  type        = string
  default     = "*/5 * * * *"
}

variable "ingress_settings" {
  description = "Ingress of the functions."
  type        = string
  default     = "ALLOW_ALL"
}

variable "step_max_instances" {
  description = "Upper bound of instances per step service."
  type        = number
  default     = 10
}

variable "bridge_resources" {
  description = "Size of the bridge."
  type = object({
    memory          = string
    cpu             = number
    timeout_seconds = number
    concurrency     = number
    min_instances   = number
    max_instances   = number
  })
  default = {
    memory          = "512Mi"
    cpu             = 1
    timeout_seconds = 300
    concurrency     = 20
    min_instances   = 0
    max_instances   = 10
  }
}

variable "max_delivery_attempts" {
  description = "Push attempts before a message is dead-lettered."
  type        = number
  default     = 10
}

variable "failure_ratio_threshold" {
  description = "Alert threshold on failed / finished task attempts of a step."
  type        = number
  default     = 0.2
}

variable "notification_channels" {
  description = "Existing notification channel ids for the alerts."
  type        = list(string)
  default     = []
}

variable "alert_email" {
  description = "If set, an email channel is created for the alerts."
  type        = string
  default     = ""
}

variable "force_destroy_buckets" {
  description = "Let terraform destroy delete non-empty buckets (dev only)."
  type        = bool
  default     = false
}

variable "firestore_delete_protection" {
  description = "Refuse to delete the Firestore database."
  type        = bool
  default     = true
}

variable "firestore_point_in_time_recovery" {
  description = "Keep 7 days of Firestore point-in-time recovery."
  type        = bool
  default     = true
}

variable "tenant_limits" {
  description = "COURSEGEN_TENANT_LIMITS: tenants' fair shares as JSON ({default: {maxActive, dailyAiUsd}, tenants: {NAME: {...}}, maxActiveTotal}; README: Tenants and fair shares). \"{}\": no limit."
  type        = string
  default     = "{}"

  validation {
    condition     = can(keys(jsondecode(var.tenant_limits)))
    error_message = "tenant_limits must be a JSON object."
  }
}
