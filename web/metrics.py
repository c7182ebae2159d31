"""Prometheus metrics computed from the database at scrape time.

Workers run in other processes (and other machines), so in-process counters in the web app would only see
half the story. The job table already holds every status, runtime and batch size; reading it on each scrape
gives the same numbers from any web process.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from web.core.models import Job, JobStatus

RUNTIME_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32)


def _histogram_rows(session: Session, column: object, bounds: Sequence[float], scale: float) -> list[int]:
    """Cumulative counts for ``column / scale <= bound`` for each bound, then the total count; one query."""
    value = column / scale if scale != 1 else column  # type: ignore[operator]
    counts = [func.sum(case((value <= bound, 1), else_=0)) for bound in bounds]
    row = session.execute(
        select(*counts, func.count(column), func.coalesce(func.sum(value), 0.0)).where(
            Job.status == JobStatus.SUCCEEDED.value,
            column.isnot(None),  # type: ignore[attr-defined]
        )
    ).one()
    return [int(count or 0) for count in row[:-1]] + [float(row[-1])]


def _histogram(name: str, doc: str, bounds: Sequence[float], rows: list) -> HistogramMetricFamily:
    *cumulative, total, total_sum = rows
    buckets = [(str(bound), count) for bound, count in zip(bounds, cumulative, strict=True)]
    buckets.append(("+Inf", total))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total_sum)


def _age_seconds(when: datetime | None) -> float:
    if when is None:
        return 0.0
    if when.tzinfo is None:  # SQLite returns naive datetimes; they were written as UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - when).total_seconds())


class JobTableCollector(Collector):
    """Jobs by status, queue depth, processing time and batch sizes, read from the job table."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def collect(self) -> Iterator[Metric]:
        with self.session_factory() as session:
            by_status = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            runtime = _histogram_rows(session, Job.runtime_ms, RUNTIME_BUCKETS_S, 1000.0)
            batches = _histogram_rows(session, Job.batch_size, BATCH_BUCKETS, 1)
            oldest = session.scalar(
                select(func.min(Job.created_at)).where(Job.status == JobStatus.QUEUED.value)
            )
        jobs = GaugeMetricFamily("lowlight_jobs", "Jobs by status", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], by_status.get(status.value, 0))
        yield jobs
        yield GaugeMetricFamily(
            "lowlight_queue_depth",
            "Jobs waiting for a worker",
            value=by_status.get(JobStatus.QUEUED.value, 0),
        )
        yield GaugeMetricFamily(
            "lowlight_oldest_queued_job_age_seconds",
            "How long the oldest queued job has waited (0 when none): alert when workers are missing",
            value=_age_seconds(oldest),
        )
        yield _histogram(
            "lowlight_job_processing_seconds",
            "Model time per succeeded job",
            RUNTIME_BUCKETS_S,
            runtime,
        )
        yield _histogram(
            "lowlight_job_batch_size", "Batch size succeeded jobs ran in", BATCH_BUCKETS, batches
        )


def make_registry(session_factory: sessionmaker[Session]) -> CollectorRegistry:
    """A registry per app (not the global one), so several apps in one test process do not collide."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobTableCollector(session_factory))
    return registry
