output "topics" {
  description = "Topic name by topic key (course-requests, course-events)."
  value       = { for key, topic in google_pubsub_topic.source : key => topic.name }
}

output "dead_letter_topics" {
  description = "Dead-letter topic name by source topic key."
  value       = { for key, topic in google_pubsub_topic.dead_letter : key => topic.name }
}

output "dead_letter_subscriptions" {
  description = "Pull subscription on each dead-letter topic, by source topic key."
  value       = { for key, sub in google_pubsub_subscription.dead_letter : key => sub.name }
}

output "push_subscriptions" {
  description = "Push subscription to the bridge, by source topic key."
  value       = { for key, sub in google_pubsub_subscription.push : key => sub.name }
}
