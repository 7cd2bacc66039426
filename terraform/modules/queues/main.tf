# Cloud Tasks queues: one per entry of "queues" in schemas/pipeline.json.
# Adding a queue to pipeline.json adds a queue here with no .tf edit.
# Courses stay on the pipeline version they started with, and schemas/pipelines/N.json keeps
# each earlier version: the queues of those exist too (a queue several versions name gets
# the settings of the newest), until an earlier version's file is removed.

locals {
  pipeline          = jsondecode(file("${path.module}/../../../schemas/pipeline.json"))
  pipelines_dir     = "${path.module}/../../../schemas/pipelines"
  earlier_versions  = sort([for f in fileset(local.pipelines_dir, "*.json") : format("%06d", tonumber(trimsuffix(f, ".json")))])
  earlier_pipelines = [for v in local.earlier_versions : jsondecode(file("${local.pipelines_dir}/${tonumber(v)}.json"))]
  queues            = merge(concat([for p in local.earlier_pipelines : p.queues], [local.pipeline.queues])...)

  # One binding per queue and member, keyed so that for_each keys are known at plan time.
  enqueuer_bindings = {
    for pair in setproduct(keys(local.queues), keys(var.enqueuer_members)) :
    "${pair[0]}/${pair[1]}" => { queue = pair[0], member = var.enqueuer_members[pair[1]] }
  }
}

resource "google_cloud_tasks_queue" "this" {
  for_each = local.queues

  project  = var.project_id
  location = var.region
  name     = each.key

  retry_config {
    max_attempts       = each.value.retry.maxAttempts
    min_backoff        = "${each.value.retry.minBackoffSeconds}s"
    max_backoff        = "${each.value.retry.maxBackoffSeconds}s"
    max_doublings      = each.value.retry.maxDoublings
    max_retry_duration = "${each.value.retry.maxRetryDurationSeconds}s"
  }

  rate_limits {
    max_dispatches_per_second = each.value.rateLimits.maxDispatchesPerSecond
    max_concurrent_dispatches = each.value.rateLimits.maxConcurrentDispatches
  }

  stackdriver_logging_config {
    sampling_ratio = var.logging_sampling_ratio
  }
}

# The bridge creates tasks: enqueuer on these queues only, never project-wide.
resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = local.enqueuer_bindings

  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.this[each.value.queue].name
  role     = "roles/cloudtasks.enqueuer"
  member   = each.value.member
}
