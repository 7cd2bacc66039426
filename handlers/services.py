"""What a step may use besides its inputs: artifact storage, settings, clock, AI providers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handlers.artifacts import ArtifactStore


@dataclass(frozen=True)
class StepServices:
    artifacts: ArtifactStore
    settings: Any  # bridge.settings.Settings (duck-typed: handlers do not import bridge)
    scratch: Path
    options: Mapping[str, Any] = field(default_factory=dict)  # e.g. provider overrides
