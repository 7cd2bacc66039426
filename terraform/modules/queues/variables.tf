variable "project_id" {
  description = "Project that owns the queues."
  type        = string
}

variable "region" {
  description = "Region of the queues (COURSEGEN_REGION)."
  type        = string
}

variable "enqueuer_members" {
  description = "IAM members (\"serviceAccount:...\") allowed to create tasks on every queue, by a static key (for_each keys must be known at plan time)."
  type        = map(string)
  default     = {}
}

variable "logging_sampling_ratio" {
  description = "Fraction of task operations Cloud Tasks logs (0.0 - 1.0)."
  type        = number
  default     = 1.0

  validation {
    condition     = var.logging_sampling_ratio >= 0 && var.logging_sampling_ratio <= 1
    error_message = "logging_sampling_ratio must be between 0 and 1."
  }
}
