# Cloud Functions (2nd gen): the bridge, one service per step of schemas/pipeline.json,
# and (while the A/B rollout needs it) the legacy Firestore-triggered function. All run
# the same source zip of the repository; COURSEGEN_STEP tells a step service its step.

locals {
  pipeline = jsondecode(file("${path.module}/../../../schemas/pipeline.json"))
  # A course stays on the pipeline version it started with (schemas/pipelines/N.json keeps
  # each earlier one): a step only an earlier version has keeps its service (the newest
  # definition of a step several versions name wins), as modules/queues does for queues.
  pipelines_dir     = "${path.module}/../../../schemas/pipelines"
  earlier_versions  = sort([for f in fileset(local.pipelines_dir, "*.json") : format("%06d", tonumber(trimsuffix(f, ".json")))])
  earlier_pipelines = [for v in local.earlier_versions : jsondecode(file("${local.pipelines_dir}/${tonumber(v)}.json"))]
  steps             = merge(concat([for p in local.earlier_pipelines : p.steps], [local.pipeline.steps])...)

  # Steps with no prerequisite receive the lecture video: they carry the fetch limits.
  entry_steps = { for name, step in local.steps : name => step if length(step.after) == 0 }
  # Steps that name a provider in pipeline.json call Gemini or OpenAI: they get the keys.
  ai_steps = { for name, step in local.steps : name => step if contains(keys(step), "provider") }

  # Cloud Run service names: lowercase letters, digits and dashes.
  step_function_names = { for name, step in local.steps : name => "${var.name_prefix}-${replace(name, "_", "-")}" }

  # Environment, one literal map per kind of service, so that a test can read which
  # variables each service gets (tests/terraform/test_terraform.py):
  #   bridge      = env_common + env_bridge + var.rollout_env
  #   step S      = env_common + env_step + {COURSEGEN_STEP = S}
  #                 + env_entry_step if S is in entry_steps
  #                 + secret_env     if S is in ai_steps
  #   legacy      = env_common + env_step + env_entry_step + secret_env (runs any step)
  env_common = {
    COURSEGEN_STORE         = "firestore"
    COURSEGEN_ARTIFACTS     = var.artifacts_uri
    GOOGLE_CLOUD_PROJECT    = var.project_id
    COURSEGEN_AUTH          = "oidc"
    COURSEGEN_OIDC_AUDIENCE = var.oidc_audience
    COURSEGEN_EVENTS_TOPIC  = var.events_topic
  }

  env_bridge = {
    COURSEGEN_DISPATCHER              = "cloudtasks"
    COURSEGEN_REGION                  = var.region
    COURSEGEN_STEP_URLS               = jsonencode({ for name, fn in google_cloudfunctions2_function.step : name => fn.service_config[0].uri })
    COURSEGEN_TASKS_INVOKER_SA        = var.service_accounts.invoker
    COURSEGEN_ALLOWED_INVOKERS        = join(",", concat([var.service_accounts["pubsub-push"], var.service_accounts.scheduler], [for member in values(var.operators) : split(":", member)[1]]))
    COURSEGEN_DEAD_LETTER_TOPIC       = var.dead_letter_topic
    COURSEGEN_RECONCILE_QUIET_SECONDS = tostring(var.reconcile_quiet_seconds)
    COURSEGEN_TENANT_LIMITS           = var.tenant_limits
  }

  env_step = {
    COURSEGEN_STEP             = "" # all steps; each step service overrides it with its own name
    COURSEGEN_PROVIDER         = var.ai_provider
    COURSEGEN_ALLOWED_INVOKERS = var.service_accounts.invoker
  }

  env_entry_step = {
    COURSEGEN_FETCH_ALLOWED_HOSTS = join(",", var.fetch_allowed_hosts)
    COURSEGEN_MAX_VIDEO_BYTES     = tostring(var.max_video_bytes)
    COURSEGEN_MAX_VIDEO_SECONDS   = tostring(var.max_video_seconds)
  }

  # Environment variable -> Secret Manager secret id; mounted from the latest version.
  secret_env = {
    GEMINI_API_KEY = var.secret_ids.gemini
    OPENAI_API_KEY = var.secret_ids.openai
  }

  source_object = "source-${data.archive_file.source.output_md5}.zip"
}

# The repository, zipped. Cloud Build installs requirements.txt from its root.
data "archive_file" "source" {
  type        = "zip"
  source_dir  = var.source_dir
  output_path = "${path.root}/.build/coursegen-source.zip"
  excludes    = var.source_excludes
}

resource "google_storage_bucket_object" "source" {
  name   = local.source_object
  bucket = var.source_bucket
  source = data.archive_file.source.output_path
}

# Images of the functions, in a repository of our own so the builder writes here only.
resource "google_artifact_registry_repository" "functions" {
  #checkov:skip=CKV_GCP_84:images are built from this repository's source and hold no data or secrets; Google-managed encryption is enough
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  format        = "DOCKER"
  description   = "coursegen function images"
  labels        = var.labels

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s"
    }
  }
}

resource "google_artifact_registry_repository_iam_member" "builder_writes_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${var.service_accounts.builder}"
}

resource "google_cloudfunctions2_function" "step" {
  #checkov:skip=CKV_GCP_124:Cloud Tasks reaches it on its run.app URL; every call needs run.invoker and a verified OIDC token (var.ingress_settings can tighten it)
  for_each = local.steps

  project     = var.project_id
  location    = var.region
  name        = local.step_function_names[each.key]
  description = "coursegen step ${each.key}: ${try(each.value.description, "")}"
  labels      = merge(var.labels, { component = "step" })

  build_config {
    runtime           = var.runtime
    entry_point       = "run_task"
    service_account   = var.builder_service_account_id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = each.value.resources.memory
    available_cpu                    = tostring(each.value.resources.cpu)
    timeout_seconds                  = each.value.resources.timeoutSeconds
    max_instance_request_concurrency = each.value.resources.concurrency
    min_instance_count               = 0
    max_instance_count               = var.step_max_instances
    ingress_settings                 = var.ingress_settings
    all_traffic_on_latest_revision   = true
    service_account_email            = var.service_accounts.steps

    environment_variables = merge(
      local.env_common,
      local.env_step,
      { COURSEGEN_STEP = each.key },
      contains(keys(local.entry_steps), each.key) ? local.env_entry_step : {},
    )

    dynamic "secret_environment_variables" {
      for_each = contains(keys(local.ai_steps), each.key) ? local.secret_env : {}
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }
}

resource "google_cloudfunctions2_function" "bridge" {
  #checkov:skip=CKV_GCP_124:Pub/Sub push, Cloud Scheduler, Cloud Tasks and operators reach it on its run.app URL; every call needs run.invoker and a verified OIDC token (var.ingress_settings can tighten it)
  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-bridge"
  description = "coursegen bridge: Pub/Sub push, reconcile, operator routes"
  labels      = merge(var.labels, { component = "bridge" })

  build_config {
    runtime           = var.runtime
    entry_point       = "bridge"
    service_account   = var.builder_service_account_id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.bridge_resources.memory
    available_cpu                    = tostring(var.bridge_resources.cpu)
    timeout_seconds                  = var.bridge_resources.timeout_seconds
    max_instance_request_concurrency = var.bridge_resources.concurrency
    min_instance_count               = var.bridge_resources.min_instances
    max_instance_count               = var.bridge_resources.max_instances
    ingress_settings                 = var.ingress_settings
    all_traffic_on_latest_revision   = true
    service_account_email            = var.service_accounts.bridge

    environment_variables = merge(local.env_common, local.env_bridge, var.rollout_env)
  }
}

resource "google_cloudfunctions2_function" "legacy" {
  #checkov:skip=CKV_GCP_124:Eventarc delivers to its run.app URL; every call needs run.invoker and a verified OIDC token (var.ingress_settings can tighten it)
  count = var.legacy_trigger_enabled ? 1 : 0

  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-legacy-step-created"
  description = "coursegen legacy transport: runs a step when legacy_steps/{stepId} is created"
  labels      = merge(var.labels, { component = "legacy" })

  build_config {
    runtime           = var.runtime
    entry_point       = "legacy_step_created"
    service_account   = var.builder_service_account_id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory                 = var.legacy_resources.memory
    available_cpu                    = tostring(var.legacy_resources.cpu)
    timeout_seconds                  = var.legacy_resources.timeout_seconds
    max_instance_request_concurrency = 1
    min_instance_count               = 0
    max_instance_count               = var.step_max_instances
    ingress_settings                 = var.ingress_settings
    all_traffic_on_latest_revision   = true
    service_account_email            = var.service_accounts.steps

    environment_variables = merge(local.env_common, local.env_step, local.env_entry_step)

    dynamic "secret_environment_variables" {
      for_each = local.secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }

  event_trigger {
    # Firestore emits events from the database's location.
    trigger_region        = var.firestore_location
    event_type            = "google.cloud.firestore.document.v1.created"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = var.service_accounts.invoker

    event_filters {
      attribute = "database"
      value     = var.firestore_database
    }

    event_filters {
      attribute = "document"
      value     = "legacy_steps/{stepId}"
      operator  = "match-path-pattern"
    }
  }
}

# Who may call what (Cloud Run IAM on each function's service):
# Cloud Tasks calls the step services with the invoker account's OIDC token.
resource "google_cloud_run_service_iam_member" "step_invoker" {
  for_each = local.steps

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.step[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.service_accounts.invoker}"
}

# Eventarc delivers Firestore events to the legacy function as the invoker account.
resource "google_cloud_run_service_iam_member" "legacy_invoker" {
  count = var.legacy_trigger_enabled ? 1 : 0

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.legacy[0].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.service_accounts.invoker}"
}

# Pub/Sub push, Cloud Scheduler and operators call the bridge.
resource "google_cloud_run_service_iam_member" "bridge_invoker" {
  for_each = merge(
    {
      pubsub-push = "serviceAccount:${var.service_accounts["pubsub-push"]}"
      scheduler   = "serviceAccount:${var.service_accounts.scheduler}"
    },
    var.operators,
  )

  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.bridge.name
  role     = "roles/run.invoker"
  member   = each.value
}
