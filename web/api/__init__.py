"""The JSON API (``/api/v1``)."""

from web.api.views import bp

__all__ = ["bp"]
