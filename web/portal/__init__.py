"""The browser portal: upload, jobs, one job with a before/after comparison."""

from web.portal.views import bp

__all__ = ["bp"]
