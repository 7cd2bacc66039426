variable "project_id" {
  description = "Project of the secrets."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the secret ids."
  type        = string
}

variable "labels" {
  description = "Labels on the secrets."
  type        = map(string)
  default     = {}
}

variable "accessors" {
  description = "IAM members allowed to read the secrets' values, by a static key."
  type        = map(string)
  default     = {}
}
