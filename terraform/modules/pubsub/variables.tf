variable "project_id" {
  description = "Project of the topics."
  type        = string
}

variable "labels" {
  description = "Labels on topics and subscriptions."
  type        = map(string)
  default     = {}
}

variable "bridge_url" {
  description = "HTTPS URL of the bridge service (no trailing slash)."
  type        = string
}

variable "push_service_account_email" {
  description = "Service account whose OIDC token Pub/Sub attaches to push deliveries."
  type        = string
}

variable "pubsub_service_agent" {
  description = "Email of the Pub/Sub service agent of the project."
  type        = string
}

variable "events_publishers" {
  description = "IAM members allowed to publish to course-events, by a static key."
  type        = map(string)
  default     = {}
}

variable "dead_letter_publishers" {
  description = "IAM members allowed to publish to the dead-letter topics, by a static key."
  type        = map(string)
  default     = {}
}

variable "max_delivery_attempts" {
  description = "Push deliveries before a message goes to the dead-letter topic (5-100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts."
  }
}

variable "ack_deadline_seconds" {
  description = "Push request timeout."
  type        = number
  default     = 60
}

variable "push_min_backoff" {
  description = "Minimum delay between push retries."
  type        = string
  default     = "10s"
}

variable "push_max_backoff" {
  description = "Maximum delay between push retries."
  type        = string
  default     = "600s"
}

variable "topic_retention" {
  description = "How long topics keep messages (lets a new subscription or a seek replay them)."
  type        = string
  default     = "86400s"
}

variable "subscription_retention" {
  description = "How long push subscriptions keep undelivered messages."
  type        = string
  default     = "604800s"
}

variable "dead_letter_retention" {
  description = "How long dead-lettered messages are kept for an operator."
  type        = string
  default     = "604800s"
}
