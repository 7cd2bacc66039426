variable "project_id" {
  description = "Project of the service accounts."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the account ids (account ids are at most 30 characters)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,17}$", var.name_prefix))
    error_message = "name_prefix must be 2-18 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "pubsub_service_agent" {
  description = "Email of the Pub/Sub service agent, service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com."
  type        = string
}

variable "legacy_trigger_enabled" {
  description = "Whether the legacy Firestore-trigger function is deployed (its trigger needs eventarc.eventReceiver)."
  type        = bool
}
