output "metric_types" {
  description = "Monitoring metric types of the log-based metrics."
  value = {
    task_results     = local.results_metric
    task_duration_ms = local.duration_metric
  }
}

output "dashboard_id" {
  description = "Id of the tasks dashboard."
  value       = google_monitoring_dashboard.tasks.id
}
