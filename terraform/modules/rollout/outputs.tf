output "bridge_env" {
  description = "Environment of the bridge that selects the transport of each new course."
  value = {
    COURSEGEN_ROLLOUT_PERCENT        = tostring(var.rollout_percent)
    COURSEGEN_LEGACY_TRIGGER_ENABLED = var.legacy_trigger_enabled ? "true" : "false"
  }

  # Routing courses to a transport whose function is not deployed would stall them.
  precondition {
    condition     = var.legacy_trigger_enabled || !local.legacy_needed
    error_message = "rollout_percent < 100 routes courses to the legacy transport: set legacy_trigger_enabled = true."
  }
}

output "legacy_trigger_enabled" {
  description = "Whether the legacy function is deployed."
  value       = var.legacy_trigger_enabled
}
