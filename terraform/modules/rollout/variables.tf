variable "rollout_percent" {
  description = "Percent of new courses on the Cloud Tasks transport (the rest use the legacy Firestore trigger)."
  type        = number
  default     = 100

  validation {
    condition     = var.rollout_percent >= 0 && var.rollout_percent <= 100 && floor(var.rollout_percent) == var.rollout_percent
    error_message = "rollout_percent must be a whole number from 0 to 100."
  }
}

variable "legacy_trigger_enabled" {
  description = "Deploy the legacy Firestore-triggered function (legacy_step_created)."
  type        = bool
  default     = false
}
