"""Composition roots: the embedded runtime (laptop), the cloud runtime (functions), the clock.

May import: `bridge.core`, `bridge.reconcile`, `bridge.wire`, `bridge.dispatch`, `bridge.pubsub`,
`bridge.settings`, stores, and any `handlers` module (a composition root wires the steps in).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bridge.core import Bridge
    from bridge.settings import Settings


class BridgeRuntime(Protocol):
    """What the bridge function's routes (``bridge.web.bridge_app``) need of a runtime: the
    cloud one (``runtime.cloud.CloudRuntime``) and ``coursegen serve``'s local one both offer it."""

    @property
    def bridge(self) -> Bridge: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def quiet_s(self) -> float:
        """How long a course may stay silent before the reconciler advances it."""
        ...

    def verify(self, headers: Mapping[str, str], body: bytes, url: str) -> str:
        """The proven caller of a push or operator request; ``Unauthorized`` if none."""
        ...

    def dead_letter(
        self, data: bytes, reason: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        """Park a message that can never be processed (its original bytes and why)."""
        ...
