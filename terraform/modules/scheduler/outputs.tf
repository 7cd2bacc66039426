output "job_name" {
  description = "Name of the reconcile job."
  value       = google_cloud_scheduler_job.reconcile.name
}
