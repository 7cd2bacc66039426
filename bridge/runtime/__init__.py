"""Composition roots: the embedded runtime (laptop), the cloud runtime (functions), the clock.

May import: `bridge.core`, `bridge.reconcile`, `bridge.wire`, `bridge.dispatch`, `bridge.pubsub`,
`bridge.settings`, stores, and any `handlers` module (a composition root wires the steps in).
"""
