variable "project_id" {
  description = "Project of this environment."
  type        = string
}

variable "region" {
  description = "Region of the functions, queues, scheduler and buckets."
  type        = string
  default     = "europe-west1"
}

variable "firestore_location" {
  description = "Firestore location; fixed once the database exists."
  type        = string
  default     = "eur3"
}

variable "rollout_percent" {
  description = "Percent of new courses on the Cloud Tasks transport; the rest go to the legacy Firestore trigger."
  type        = number
  default     = 100

  validation {
    condition     = var.rollout_percent >= 0 && var.rollout_percent <= 100 && floor(var.rollout_percent) == var.rollout_percent
    error_message = "rollout_percent must be a whole number from 0 to 100."
  }
}

variable "legacy_trigger_enabled" {
  description = "Deploy the legacy Firestore-triggered function (needed while rollout_percent < 100)."
  type        = bool
  default     = false
}

variable "ai_provider" {
  description = "COURSEGEN_PROVIDER of the AI steps: offline | gemini | openai."
  type        = string
  default     = "offline"
}

variable "operators" {
  description = "IAM members allowed to call the bridge's /operator/ routes, by a static key."
  type        = map(string)
  default     = {}
}

variable "fetch_allowed_hosts" {
  description = "Hosts exempt from the SSRF guard when fetching videos."
  type        = list(string)
  default     = []
}

variable "alert_email" {
  description = "Email that receives alerts (empty: none created)."
  type        = string
  default     = ""
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
