output "queue_names" {
  description = "Queue name by queue key of pipeline.json."
  value       = { for key, queue in google_cloud_tasks_queue.this : key => queue.name }
}

output "queue_ids" {
  description = "Full queue resource ids by queue key."
  value       = { for key, queue in google_cloud_tasks_queue.this : key => queue.id }
}
