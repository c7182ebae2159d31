"""The periodic schedule run by ``celery beat``: recovering jobs of dead workers.

A later issue adds retraining here (on the ``training`` queue); ``extra`` lets it plug in without touching the
recovery entry.
"""

from __future__ import annotations

from typing import Any

from web.settings import Settings

RECOVER_INTERVAL_S = 30.0
MIN_RECOVER_INTERVAL_S = 1.0


def recover_interval_s(settings: Settings) -> float:
    """Every 30 s, or more often when leases are short (tests), so a lease is never overdue by much."""
    from worker.batching import lease_seconds

    return max(MIN_RECOVER_INTERVAL_S, min(RECOVER_INTERVAL_S, lease_seconds(settings) / 10))


def beat_schedule(settings: Settings, extra: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        "recover-stale-jobs": {
            "task": "worker.recover_stale_jobs",
            "schedule": recover_interval_s(settings),
            "options": {"queue": settings.queue_name, "expires": recover_interval_s(settings)},
        },
    }
    schedule.update(extra or {})
    return schedule
