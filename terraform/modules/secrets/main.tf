# Secret Manager secrets for the AI providers' keys. Terraform makes the secrets and who
# may read them; the values are added out of band (gcloud secrets versions add), so they
# never enter the Terraform state.

locals {
  secrets = {
    gemini = "Gemini API key (GEMINI_API_KEY)"
    openai = "OpenAI API key (OPENAI_API_KEY)"
  }

  accessor_bindings = {
    for pair in setproduct(keys(local.secrets), keys(var.accessors)) :
    "${pair[0]}/${pair[1]}" => { secret = pair[0], member = var.accessors[pair[1]] }
  }
}

resource "google_secret_manager_secret" "this" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = "${var.name_prefix}-${each.key}-api-key"
  labels    = merge(var.labels, { purpose = "ai-provider-key" })
  annotations = {
    description = each.value
  }

  replication {
    auto {}
  }
}

# Only the step services that call an AI provider run as the accounts given here.
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.accessor_bindings

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}
