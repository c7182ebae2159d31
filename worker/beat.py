"""The periodic schedule run by ``celery beat``: recovering jobs of dead workers.

A later issue adds retraining here (on the ``training`` queue); ``extra`` lets it plug in without touching the
recovery entry.
"""

from __future__ import annotations

from typing import Any

from web.core.settings import Settings
from worker.batching import lease_seconds
from worker.tasks import RECOVER_TASK


def recover_interval_s(settings: Settings) -> float:
    """Twice per lease (every 15 s with the 30 s lease), so a dead worker's jobs wait at most 1.5 leases."""
    return lease_seconds(settings) / 2


def beat_schedule(settings: Settings, extra: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        "recover-stale-jobs": {
            "task": RECOVER_TASK,
            "schedule": recover_interval_s(settings),
            "options": {"queue": settings.queue_name, "expires": recover_interval_s(settings)},
        },
    }
    schedule.update(extra or {})
    return schedule
