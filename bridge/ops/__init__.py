"""Operator and auditor use cases: status, replay and audit, stats, projections, export.

May import: the core (`statemachine`), store ports, `bridge.core`, `bridge.reconcile`,
`bridge.wire`; never a concrete store adapter, a web framework or the CLI.
"""
