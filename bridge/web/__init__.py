"""Every Flask app: the bridge function's routes, the dashboard, OpenAPI, problem documents.

May import: `bridge.ops`, `bridge.runtime`, `bridge.diagrams`, `bridge.pubsub`, `bridge.core`,
`bridge.wire`.
"""
