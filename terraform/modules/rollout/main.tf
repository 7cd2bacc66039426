# A/B rollout between the Cloud Tasks transport and the legacy Firestore-trigger transport.
# It makes no resource: it validates the two knobs and turns them into the bridge's
# environment (COURSEGEN_ROLLOUT_PERCENT, COURSEGEN_LEGACY_TRIGGER_ENABLED) and into
# whether the legacy function exists at all (see outputs.tf).

locals {
  # Courses still routed to the legacy transport need its function.
  legacy_needed = var.rollout_percent < 100
}
