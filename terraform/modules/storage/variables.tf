variable "project_id" {
  description = "Project that owns the buckets; also the bucket name prefix (bucket names are global)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of resource names."
  type        = string
}

variable "location" {
  description = "Bucket location (region or multi-region)."
  type        = string
}

variable "labels" {
  description = "Labels on every bucket."
  type        = map(string)
  default     = {}
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete non-empty buckets (dev only)."
  type        = bool
  default     = false
}

variable "artifact_writers" {
  description = "IAM members (by a static key, e.g. \"steps\") granted roles/storage.objectAdmin on the artifacts bucket."
  type        = map(string)
  default     = {}
}

variable "artifact_readers" {
  description = "IAM members (by a static key, e.g. \"steps\") granted roles/storage.objectViewer on the artifacts bucket."
  type        = map(string)
  default     = {}
}

variable "source_readers" {
  description = "IAM members (by a static key, e.g. \"steps\") granted roles/storage.objectViewer on the source bucket."
  type        = map(string)
  default     = {}
}

variable "artifacts_nearline_after_days" {
  description = "Age after which artifacts move to NEARLINE."
  type        = number
  default     = 90
}

variable "noncurrent_retention_days" {
  description = "Days a replaced object version is kept."
  type        = number
  default     = 30
}

variable "source_retention_days" {
  description = "Days a source zip is kept (rollback window for re-applying an older version)."
  type        = number
  default     = 180
}

variable "access_log_retention_days" {
  description = "Days access logs are kept."
  type        = number
  default     = 90
}
