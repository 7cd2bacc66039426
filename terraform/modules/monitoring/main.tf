# Observability: log-based metrics from the services' structured log lines, a dashboard,
# and alert policies on the dead-letter backlog and on the task failure rate.
#
# Log contract (one JSON line per finished task attempt, written by handlers/):
#   {"event": "task_succeeded" | "task_failed", "step": "<step>", "variant": "<transport>",
#    "duration_ms": <int>, ...}

locals {
  # Logs of our functions only: Cloud Functions 2nd gen log as Cloud Run revisions.
  service_filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^${var.name_prefix}-\""
  task_filter    = "${local.service_filter} AND jsonPayload.event=(\"task_succeeded\" OR \"task_failed\")"

  task_labels = {
    outcome = "EXTRACT(jsonPayload.event)"
    step    = "EXTRACT(jsonPayload.step)"
    variant = "EXTRACT(jsonPayload.variant)"
  }

  results_metric  = "logging.googleapis.com/user/${google_logging_metric.task_results.name}"
  duration_metric = "logging.googleapis.com/user/${google_logging_metric.task_duration.name}"

  channels = concat(var.notification_channels, google_monitoring_notification_channel.email[*].id)
}

resource "google_logging_metric" "task_results" {
  project     = var.project_id
  name        = "${var.name_prefix}/task_results"
  description = "Finished task attempts, by outcome (task_succeeded, task_failed), step and variant."
  filter      = local.task_filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "coursegen task results"

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "task_succeeded or task_failed"
    }
    labels {
      key         = "step"
      value_type  = "STRING"
      description = "pipeline step"
    }
    labels {
      key         = "variant"
      value_type  = "STRING"
      description = "transport of the course (A/B rollout)"
    }
  }

  label_extractors = local.task_labels
}

resource "google_logging_metric" "task_duration" {
  project     = var.project_id
  name        = "${var.name_prefix}/task_duration_ms"
  description = "Duration of finished task attempts (jsonPayload.duration_ms), by outcome, step and variant."
  filter      = "${local.task_filter} AND jsonPayload.duration_ms:*"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "coursegen task duration"

    labels {
      key         = "outcome"
      value_type  = "STRING"
      description = "task_succeeded or task_failed"
    }
    labels {
      key         = "step"
      value_type  = "STRING"
      description = "pipeline step"
    }
    labels {
      key         = "variant"
      value_type  = "STRING"
      description = "transport of the course (A/B rollout)"
    }
  }

  value_extractor  = "EXTRACT(jsonPayload.duration_ms)"
  label_extractors = local.task_labels

  # 10 ms .. about 30 h in 40 buckets growing by half each.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.5
      scale              = 10
    }
  }
}

resource "google_monitoring_notification_channel" "email" {
  count = var.alert_email == "" ? 0 : 1

  project      = var.project_id
  display_name = "${var.name_prefix} alerts"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }
}

resource "google_monitoring_alert_policy" "dead_letter_backlog" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: messages in a dead-letter subscription"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.channels

  dynamic "conditions" {
    for_each = var.dead_letter_subscriptions
    content {
      display_name = "Undelivered messages in ${conditions.value}"
      condition_threshold {
        filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${conditions.value}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
        comparison      = "COMPARISON_GT"
        threshold_value = 0
        duration        = "300s"
        aggregations {
          alignment_period   = "300s"
          per_series_aligner = "ALIGN_MAX"
        }
        trigger {
          count = 1
        }
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A message was dead-lettered after ${var.max_delivery_attempts} push attempts to the bridge. Pull it from the subscription named in the incident (`gcloud pubsub subscriptions pull SUB --limit 10`), inspect the course with `coursegen replay COURSE_ID --verify`, fix, and republish to the source topic."
  }
}

resource "google_monitoring_alert_policy" "task_failure_rate" {
  project               = var.project_id
  display_name          = "${var.name_prefix}: task failure rate"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.channels

  conditions {
    display_name = "Failed / finished task attempts above ${var.failure_ratio_threshold} for a step"
    condition_threshold {
      filter             = "resource.type = \"cloud_run_revision\" AND metric.type = \"${local.results_metric}\" AND metric.labels.outcome = \"task_failed\""
      denominator_filter = "resource.type = \"cloud_run_revision\" AND metric.type = \"${local.results_metric}\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.failure_ratio_threshold
      duration           = "0s"

      aggregations {
        alignment_period     = var.failure_rate_window
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.step"]
      }

      denominator_aggregations {
        alignment_period     = var.failure_rate_window
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.step"]
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "More than ${var.failure_ratio_threshold * 100}% of a step's task attempts failed over ${var.failure_rate_window}. Cloud Tasks retries them; look at the step's logs (jsonPayload.event=\"task_failed\") and at the courses it names. A rollout in progress can be reverted with rollout_percent (terraform/README.md)."
  }
}

resource "google_monitoring_dashboard" "tasks" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "${var.name_prefix}: pipeline tasks"
    mosaicLayout = {
      columns = 48
      tiles = [
        {
          xPos = 0, yPos = 0, width = 24, height = 16
          widget = {
            title = "Task results per minute, by step and outcome"
            xyChart = {
              dataSets = [{
                plotType = "STACKED_BAR"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type=\"${local.results_metric}\" resource.type=\"cloud_run_revision\""
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_DELTA"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["metric.label.step", "metric.label.outcome"]
                    }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 24, yPos = 0, width = 24, height = 16
          widget = {
            title = "Task duration p95 (ms), by step"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type=\"${local.duration_metric}\" resource.type=\"cloud_run_revision\""
                    aggregation = {
                      alignmentPeriod    = "300s"
                      perSeriesAligner   = "ALIGN_DELTA"
                      crossSeriesReducer = "REDUCE_PERCENTILE_95"
                      groupByFields      = ["metric.label.step"]
                    }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 0, yPos = 16, width = 24, height = 16
          widget = {
            title = "Tasks waiting per queue"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" resource.type=\"cloud_tasks_queue\""
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_MAX"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["resource.label.queue_id"]
                    }
                  }
                }
              }]
            }
          }
        },
        {
          xPos = 24, yPos = 16, width = 24, height = 16
          widget = {
            title = "Dead-lettered messages waiting"
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" resource.type=\"pubsub_subscription\" resource.label.subscription_id=monitoring.regex.full_match(\".*-dead-letter-hold\")"
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_MAX"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["resource.label.subscription_id"]
                    }
                  }
                }
              }]
            }
          }
        },
      ]
    }
  })
}
