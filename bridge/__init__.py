"""The bridge: ingest requests, advance courses, reconcile, dispatch, and the coursegen CLI."""
