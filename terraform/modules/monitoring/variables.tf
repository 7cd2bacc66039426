variable "project_id" {
  description = "Project of the metrics, dashboard and alerts."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the services' names (their logs are the metrics' source) and of metric names."
  type        = string
}

variable "dead_letter_subscriptions" {
  description = "Subscriptions on the dead-letter topics, by source topic key."
  type        = map(string)
}

variable "max_delivery_attempts" {
  description = "Push attempts before dead-lettering (for the alert's documentation)."
  type        = number
}

variable "failure_ratio_threshold" {
  description = "Alert when failed / finished task attempts of a step exceed this ratio over the window."
  type        = number
  default     = 0.2

  validation {
    condition     = var.failure_ratio_threshold > 0 && var.failure_ratio_threshold < 1
    error_message = "failure_ratio_threshold is a ratio between 0 and 1."
  }
}

variable "failure_rate_window" {
  description = "Window of the failure-rate alert."
  type        = string
  default     = "900s"
}

variable "notification_channels" {
  description = "Existing notification channel ids (projects/P/notificationChannels/ID) for the alerts."
  type        = list(string)
  default     = []
}

variable "alert_email" {
  description = "If set, an email notification channel is created for the alerts."
  type        = string
  default     = ""
}
