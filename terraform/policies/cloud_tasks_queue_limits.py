"""Custom checkov check: every Cloud Tasks queue sets retry_config and rate_limits.

Cloud Tasks defaults are 100 attempts and 1000 dispatches per second: a queue that leans on
them hammers the step services and the AI providers. Each queue's numbers come from
schemas/pipeline.json; this check makes sure none is left out of the resource.
"""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

RETRY_FIELDS = ("max_attempts", "min_backoff", "max_backoff", "max_doublings", "max_retry_duration")
RATE_FIELDS = ("max_dispatches_per_second", "max_concurrent_dispatches")


def _block(conf: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = conf.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, dict) else None


def _sets_all(block: dict[str, Any] | None, fields: tuple[str, ...]) -> bool:
    return block is not None and all(block.get(field) not in (None, [], [None]) for field in fields)


class CloudTasksQueueSetsRetryAndRateLimits(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure every Cloud Tasks queue sets retry_config and rate_limits",
            id="CKV_COURSEGEN_1",
            categories=(CheckCategories.GENERAL_SECURITY,),
            supported_resources=("google_cloud_tasks_queue",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        retry_ok = _sets_all(_block(conf, "retry_config"), RETRY_FIELDS)
        rate_ok = _sets_all(_block(conf, "rate_limits"), RATE_FIELDS)
        return CheckResult.PASSED if retry_ok and rate_ok else CheckResult.FAILED

    def get_evaluated_keys(self) -> list[str]:
        return ["retry_config", "rate_limits"]


check = CloudTasksQueueSetsRetryAndRateLimits()
