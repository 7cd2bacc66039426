variable "project_id" {
  description = "Project of the functions (GOOGLE_CLOUD_PROJECT)."
  type        = string
}

variable "region" {
  description = "Region of the functions and of the Cloud Tasks queues (COURSEGEN_REGION)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of function names."
  type        = string
}

variable "labels" {
  description = "Labels on every function."
  type        = map(string)
  default     = {}
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python311"
}

variable "source_dir" {
  description = "Root of the repository (main.py and requirements.txt live there)."
  type        = string
}

variable "source_excludes" {
  description = "Paths under source_dir left out of the source zip."
  type        = list(string)
  default = [
    ".git",
    ".venv",
    ".venv-checkov",
    ".coursegen",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "terraform",
    "tests",
    "samples",
  ]
}

variable "source_bucket" {
  description = "Bucket the source zip is uploaded to."
  type        = string
}

variable "service_accounts" {
  description = "Service account emails by kind (bridge, invoker, steps, scheduler, pubsub-push, builder)."
  type        = map(string)
}

variable "builder_service_account_id" {
  description = "Fully qualified name (projects/P/serviceAccounts/EMAIL) of the account Cloud Build builds as."
  type        = string
}

variable "artifacts_uri" {
  description = "COURSEGEN_ARTIFACTS: gs://BUCKET/artifacts."
  type        = string
}

variable "events_topic" {
  description = "COURSEGEN_EVENTS_TOPIC: topic of course notifications."
  type        = string
}

variable "dead_letter_topic" {
  description = "COURSEGEN_DEAD_LETTER_TOPIC: topic the bridge parks rejected requests on."
  type        = string
}

variable "oidc_audience" {
  description = "COURSEGEN_OIDC_AUDIENCE. Empty: each endpoint expects its own request URL, which is what Pub/Sub push, Cloud Scheduler and Cloud Tasks put in the token by default."
  type        = string
  default     = ""
}

variable "operators" {
  description = "Operators allowed to call the bridge's /operator/ routes, as IAM members by a static key (\"user:EMAIL\" or \"serviceAccount:EMAIL\")."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for member in values(var.operators) : can(regex("^(user|serviceAccount):[^@]+@[^@]+$", member))])
    error_message = "operators must be \"user:EMAIL\" or \"serviceAccount:EMAIL\"."
  }
}

variable "rollout_env" {
  description = "Bridge environment from the rollout module (COURSEGEN_ROLLOUT_PERCENT, COURSEGEN_LEGACY_TRIGGER_ENABLED)."
  type        = map(string)
}

variable "legacy_trigger_enabled" {
  description = "Deploy the legacy Firestore-triggered function."
  type        = bool
}

variable "firestore_location" {
  description = "Location of the Firestore database (the legacy trigger's region)."
  type        = string
}

variable "firestore_database" {
  description = "Firestore database the legacy trigger watches."
  type        = string
  default     = "(default)"
}

variable "secret_ids" {
  description = "Secret Manager secret ids of the AI keys: { gemini = ..., openai = ... }."
  type        = object({ gemini = string, openai = string })
}

variable "ai_provider" {
  description = "COURSEGEN_PROVIDER: offline | gemini | openai."
  type        = string
  default     = "gemini"

  validation {
    condition     = contains(["offline", "gemini", "openai"], var.ai_provider)
    error_message = "ai_provider must be offline, gemini or openai."
  }
}

variable "fetch_allowed_hosts" {
  description = "COURSEGEN_FETCH_ALLOWED_HOSTS: hosts exempt from the SSRF guard."
  type        = list(string)
  default     = []
}

variable "max_video_bytes" {
  description = "COURSEGEN_MAX_VIDEO_BYTES."
  type        = number
  default     = 4294967296
}

variable "max_video_seconds" {
  description = "COURSEGEN_MAX_VIDEO_SECONDS."
  type        = number
  default     = 14400
}

variable "reconcile_quiet_seconds" {
  description = "COURSEGEN_RECONCILE_QUIET_SECONDS: a non-terminal course quiet this long is advanced."
  type        = number
  default     = 300
}

variable "ingress_settings" {
  description = "Ingress of every function. ALLOW_ALL keeps the run.app URLs reachable; run.invoker IAM still guards every call."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "ingress_settings must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "step_max_instances" {
  description = "Upper bound of instances of each step service (the queues' rate limits bound them too)."
  type        = number
  default     = 10
}

variable "bridge_resources" {
  description = "Size of the bridge."
  type = object({
    memory          = string
    cpu             = number
    timeout_seconds = number
    concurrency     = number
    min_instances   = number
    max_instances   = number
  })
  default = {
    memory          = "512Mi"
    cpu             = 1
    timeout_seconds = 300
    concurrency     = 20
    min_instances   = 0
    max_instances   = 10
  }
}

variable "legacy_resources" {
  description = "Size of the legacy function: it runs any step, so it needs the largest step's memory."
  type = object({
    memory          = string
    cpu             = number
    timeout_seconds = number
  })
  default = {
    memory          = "4Gi"
    cpu             = 2
    timeout_seconds = 540
  }
}

variable "tenant_limits" {
  description = "COURSEGEN_TENANT_LIMITS: tenants' fair shares as JSON ({default: {maxActive, dailyAiUsd}, tenants: {NAME: {...}}, maxActiveTotal}; README: Tenants and fair shares). \"{}\": no limit."
  type        = string
  default     = "{}"

  validation {
    condition     = can(keys(jsondecode(var.tenant_limits)))
    error_message = "tenant_limits must be a JSON object."
  }
}
