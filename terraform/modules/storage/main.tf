# Buckets: artifacts (gs://BUCKET/artifacts, the steps' outputs), function source zips,
# and the access-log bucket both of them log to.

locals {
  hardened = {
    uniform_bucket_level_access = true
    public_access_prevention    = "enforced"
  }
}

resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:this is the access-log sink itself; logging it to itself would loop
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-access-logs"
  location                    = var.location
  force_destroy               = var.force_destroy
  uniform_bucket_level_access = local.hardened.uniform_bucket_level_access
  public_access_prevention    = local.hardened.public_access_prevention
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.access_log_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket" "artifacts" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-artifacts"
  location                    = var.location
  force_destroy               = var.force_destroy
  uniform_bucket_level_access = local.hardened.uniform_bucket_level_access
  public_access_prevention    = local.hardened.public_access_prevention
  labels                      = var.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  # Old courses' intermediate files (audio, frames) are rarely read again.
  lifecycle_rule {
    condition {
      age = var.artifacts_nearline_after_days
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }

  # Overwritten artifacts (a redriven step) keep a short undo window, then go.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 3
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}

resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.location
  force_destroy               = var.force_destroy
  uniform_bucket_level_access = local.hardened.uniform_bucket_level_access
  public_access_prevention    = local.hardened.public_access_prevention
  labels                      = var.labels

  # Each deploy uploads source-<md5>.zip; old zips stay for a while so that
  # re-applying a previous version can find its source again.
  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  lifecycle_rule {
    condition {
      age = var.source_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
    }
    action {
      type = "Delete"
    }
  }
}

# Steps read and write artifacts: objectAdmin on this bucket only.
resource "google_storage_bucket_iam_member" "artifacts_object_admin" {
  for_each = var.artifact_writers

  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = each.value
}

# The bridge reads outputs (operator routes, replay): read only.
resource "google_storage_bucket_iam_member" "artifacts_object_viewer" {
  for_each = var.artifact_readers

  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectViewer"
  member = each.value
}

# Cloud Build (as the builder service account) reads the uploaded source zip.
resource "google_storage_bucket_iam_member" "source_object_viewer" {
  for_each = var.source_readers

  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = each.value
}
