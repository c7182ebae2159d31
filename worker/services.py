"""Enhancing a batch of jobs: claim, read, run the model once for all of them, store, score, finish.

Per-job problems (an input that is not an image, a missing input) fail that job only. A storage outage
gives every unfinished job of the batch back to the queue (or fails it once it has used all its attempts);
the caller schedules the retries. If the database is away, or the process is told to exit, the claims are
left to expire and be recovered. Anything else is a bug: the batch's jobs are failed with the reason and the
error is raised so the worker log shows it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError

from mirnet.imageio import DecodedImage, ImageLimits, InvalidImageError, decode_image, encode_png
from web.core.storage import StorageUnavailable, job_key
from worker import jobstate
from worker.batching import ClaimedJob, collect_batch, heartbeat_interval_s, lease_left_s, lease_seconds, max_attempts
from worker.context import WorkerContext
from worker.heartbeat import Heartbeat
from worker.scoring import Reference, load_reference, score

log = logging.getLogger(__name__)

RESULT_NAME = "result.png"


@dataclass
class BatchReport:
    """What happened to the jobs of one batch; ``released`` maps job id -> seconds to wait before retrying."""

    claimed: list[int] = field(default_factory=list)
    succeeded: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    released: dict[int, float] = field(default_factory=dict)
    # When the job was not claimed because another claim on it is still running: seconds until that lease ends.
    lease_left_s: float | None = None


@dataclass
class _Prepared:
    claim: ClaimedJob
    image: DecodedImage
    reference: Reference


def image_limits(ctx: WorkerContext) -> ImageLimits:
    s = ctx.settings
    return ImageLimits(max_pixels=s.max_pixels, max_side=s.max_side, max_bytes=s.max_upload_bytes)


def retry_delay_s(ctx: WorkerContext, attempt: int) -> float:
    """Exponential backoff: base, 2 x base, 4 x base, ... capped."""
    s = ctx.settings
    return min(s.storage_retry_backoff_max_s, s.storage_retry_backoff_s * 2 ** max(0, attempt - 1))


def enhance_batch(ctx: WorkerContext, job_id: int) -> BatchReport:
    """Run job ``job_id`` together with whatever else is queued; a no-op if the job is not ours to run."""
    with Heartbeat(ctx.sessions, heartbeat_interval_s(ctx.settings)) as heartbeat:
        claims = collect_batch(ctx.sessions, job_id, ctx.settings, on_claim=heartbeat.add)
        report = BatchReport(claimed=[claim.id for claim in claims])
        if not claims:
            with ctx.sessions() as session:
                report.lease_left_s = lease_left_s(session, job_id, lease_seconds(ctx.settings))
            log.info("job %s: nothing to do (final, canceled, or claimed under a lease still running)", job_id)
            return report
        log.info("job %s: claimed a batch of %s: jobs %s", job_id, len(claims), report.claimed)
        _run_or_settle(ctx, claims, report)
    return report


def _run_or_settle(ctx: WorkerContext, claims: list[ClaimedJob], report: BatchReport) -> None:
    """Run the batch; on failure leave every claimed job in a definite state (released or failed)."""
    try:
        _run(ctx, claims, report)
    except StorageUnavailable as exc:
        _give_back(ctx, [c for c in claims if c.id not in report.failed], exc, report)
    except SoftTimeLimitExceeded:
        limit = ctx.settings.task_soft_time_limit
        _fail_unfinished(ctx, claims, report, "timeout", f"enhancement took longer than {limit} s")
    except DBAPIError:
        raise  # the database itself is away: leave the claims to expire and be recovered
    except Exception as exc:
        _fail_unfinished(ctx, claims, report, "internal_error", f"{type(exc).__name__}: {exc}")
        raise


def _run(ctx: WorkerContext, claims: list[ClaimedJob], report: BatchReport) -> None:
    started = time.perf_counter()
    prepared = [p for p in (_prepare(ctx, claim, report) for claim in claims) if p is not None]
    if not prepared:
        return
    enhancer = ctx.enhancer
    outputs = enhancer.enhance_many([p.image.rgb for p in prepared])
    finished: list[tuple[_Prepared, str, bytes]] = []
    for item, output in zip(prepared, outputs, strict=True):
        png = encode_png(item.image, output)
        key = job_key(item.claim.id, RESULT_NAME)
        ctx.storage.put_bytes(key, png, content_type="image/png")
        finished.append((item, key, png))
    runtime_ms = (time.perf_counter() - started) * 1000
    with ctx.sessions() as session:
        for item, key, png in finished:
            metrics = score(png, item.reference)
            outcome = jobstate.Success(
                result_key=key,
                runtime_ms=runtime_ms,
                batch_size=len(prepared),
                model_version=enhancer.loaded.version,
                psnr=metrics.psnr,
                ssim=metrics.ssim,
                note=metrics.note,
            )
            if jobstate.mark_succeeded(session, item.claim, outcome):
                report.succeeded.append(item.claim.id)


def _prepare(ctx: WorkerContext, claim: ClaimedJob, report: BatchReport) -> _Prepared | None:
    """Read and decode one job's input (and reference); a bad input fails that job here."""
    try:
        data = ctx.storage.get_bytes(claim.input_key)
        image = decode_image(data, name=f"job {claim.id} input", limits=image_limits(ctx))
    except InvalidImageError as exc:
        _fail(ctx, claim, report, exc.code, str(exc))
        return None
    except FileNotFoundError:
        _fail(ctx, claim, report, "input_missing", "the uploaded image is no longer in storage")
        return None
    reference = load_reference(ctx.storage, claim.reference_key, image, image_limits(ctx))
    return _Prepared(claim, image, reference)


def _fail(ctx: WorkerContext, claim: ClaimedJob, report: BatchReport, code: str, message: str) -> None:
    with ctx.sessions() as session:
        if jobstate.mark_failed(session, claim, code, message):
            report.failed.append(claim.id)


def _fail_unfinished(
    ctx: WorkerContext, claims: list[ClaimedJob], report: BatchReport, code: str, message: str
) -> None:
    done = set(report.succeeded) | set(report.failed)
    for claim in claims:
        if claim.id not in done:
            _fail(ctx, claim, report, code, message)


def _give_back(ctx: WorkerContext, claims: list[ClaimedJob], exc: StorageUnavailable, report: BatchReport) -> None:
    """Storage is down: release each unfinished job for a later retry, or fail it if it is out of attempts."""
    cap = max_attempts(ctx.settings)
    with ctx.sessions() as session:
        for claim in claims:
            if claim.id in report.succeeded:
                continue
            if claim.attempt >= cap:
                message = f"object storage unavailable after {claim.attempt} attempts: {exc}"
                if jobstate.mark_failed(session, claim, "storage_unavailable", message):
                    report.failed.append(claim.id)
            elif jobstate.release(session, claim, f"storage unavailable, will retry: {exc}"):
                report.released[claim.id] = retry_delay_s(ctx, claim.attempt)
