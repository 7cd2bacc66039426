# Cloud Scheduler: calls the bridge's /reconcile, which advances every non-terminal
# course that went quiet (a lost Pub/Sub notification or task never strands a course).

resource "google_cloud_scheduler_job" "reconcile" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-reconcile"
  description      = "Advance non-terminal courses quiet for COURSEGEN_RECONCILE_QUIET_SECONDS"
  schedule         = var.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "${var.attempt_deadline_seconds}s"

  retry_config {
    # The next run comes in minutes anyway; one retry covers a cold start.
    retry_count          = 1
    min_backoff_duration = "10s"
    max_backoff_duration = "60s"
  }

  http_target {
    http_method = "POST"
    uri         = "${var.bridge_url}/reconcile"
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode(jsonencode({ source = "cloud-scheduler" }))

    oidc_token {
      service_account_email = var.service_account_email
      audience              = "${var.bridge_url}/reconcile"
    }
  }
}
