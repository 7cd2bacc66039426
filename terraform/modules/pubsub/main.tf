# Pub/Sub: the course-requests and course-events topics, their push subscriptions to the
# bridge (OIDC, retry, dead letter), and the dead-letter topics with pull subscriptions
# that keep what was dead-lettered for an operator.

locals {
  # Topic -> bridge route. Both are pushed to the bridge; the route tells the message kind.
  sources = {
    course-requests = { path = "/pubsub/course-requests" }
    course-events   = { path = "/pubsub/course-events" }
  }
}

resource "google_pubsub_topic" "source" {
  #checkov:skip=CKV_GCP_83:messages hold course ids and video URIs, no personal data; Google-managed encryption is enough and CMEK would add a KMS key per environment
  for_each = local.sources

  project                    = var.project_id
  name                       = each.key
  labels                     = var.labels
  message_retention_duration = var.topic_retention
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:same content as the source topics; Google-managed encryption is enough
  for_each = local.sources

  project                    = var.project_id
  name                       = "${each.key}-dead-letter"
  labels                     = var.labels
  message_retention_duration = var.topic_retention
}

resource "google_pubsub_subscription" "push" {
  for_each = local.sources

  project = var.project_id
  name    = "${each.key}-to-bridge"
  topic   = google_pubsub_topic.source[each.key].id
  labels  = var.labels

  # The bridge answers within seconds: it appends events and enqueues tasks, it never runs a step.
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.subscription_retention
  expiration_policy {
    ttl = "" # never expire
  }

  push_config {
    push_endpoint = "${var.bridge_url}${each.value.path}"
    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = "${var.bridge_url}${each.value.path}"
    }
  }

  retry_policy {
    minimum_backoff = var.push_min_backoff
    maximum_backoff = var.push_max_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }
}

# Dead-lettered messages would be dropped without a subscription on the dead-letter topic.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = local.sources

  project                    = var.project_id
  name                       = "${each.key}-dead-letter-hold"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention
  retain_acked_messages      = true
  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent forwards undeliverable messages: publisher on the dead-letter
# topics, subscriber on the source subscriptions (to ack what it forwarded).
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  for_each = local.sources

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.key].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${var.pubsub_service_agent}"
}

resource "google_pubsub_subscription_iam_member" "agent_acks_sources" {
  for_each = local.sources

  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${var.pubsub_service_agent}"
}

# Who publishes course notifications ({courseId, version}): the bridge and the steps.
resource "google_pubsub_topic_iam_member" "events_publishers" {
  for_each = var.events_publishers

  project = var.project_id
  topic   = google_pubsub_topic.source["course-events"].name
  role    = "roles/pubsub.publisher"
  member  = each.value
}

# The bridge parks messages it rejects as malformed on the dead-letter topics itself.
resource "google_pubsub_topic_iam_member" "dead_letter_publishers" {
  for_each = {
    for pair in setproduct(keys(local.sources), keys(var.dead_letter_publishers)) :
    "${pair[0]}/${pair[1]}" => { topic = pair[0], member = var.dead_letter_publishers[pair[1]] }
  }

  project = var.project_id
  topic   = google_pubsub_topic.dead_letter[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = each.value.member
}
