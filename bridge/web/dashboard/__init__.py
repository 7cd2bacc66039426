"""The live dashboard of ``coursegen serve``: pages, JSON API, diagrams and outputs."""

from bridge.web.dashboard.app import Backend, create_app

__all__ = ["Backend", "create_app"]
