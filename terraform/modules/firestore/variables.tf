variable "project_id" {
  description = "Project of the database."
  type        = string
}

variable "location" {
  description = "Firestore location (e.g. eur3, europe-west1); fixed once created. The legacy trigger is placed here too."
  type        = string
}

variable "delete_protection" {
  description = "Refuse to delete the database."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "Keep 7 days of point-in-time recovery."
  type        = bool
  default     = true
}
