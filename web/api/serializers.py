"""The JSON shape of a job, as documented in web/openapi.yaml."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flask import url_for

from web.core.models import Job, JobStatus


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z. SQLite returns naive datetimes; they were written as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def download_name(job: Job, kind: str) -> str:
    """A file name for Content-Disposition: the user's name reduced to safe ASCII, plus what the file is."""
    stem = (job.original_filename or "image").rsplit(".", 1)[0]
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "_" for ch in stem)[:100]
    if kind == "result":
        return f"{safe or 'image'}-enhanced.png"
    key = (job.input_key if kind == "input" else job.reference_key) or ""
    return f"{safe or 'image'}-{kind}.{key.rsplit('.', 1)[-1] or 'bin'}"


def finite(value: float | None) -> float | None:
    """JSON has no infinity: PSNR of identical images is reported as null rather than invalid JSON."""
    return value if value is not None and math.isfinite(value) else None


def job_to_dict(job: Job) -> dict[str, Any]:
    status = JobStatus(job.status)
    error = None
    if job.error_code or job.error_message:
        error = {"code": job.error_code or "error", "message": job.error_message or ""}
    links: dict[str, str | None] = {
        "self": url_for("api.get_job", job_id=job.id),
        "result": url_for("api.get_result", job_id=job.id) if status == JobStatus.SUCCEEDED else None,
        "cancel": url_for("api.cancel_job", job_id=job.id) if status == JobStatus.QUEUED else None,
    }
    return {
        "id": job.id,
        "status": status.value,
        "filename": job.original_filename,
        "width": job.width,
        "height": job.height,
        "has_reference": job.reference_key is not None,
        "contribute": job.contribute,
        "note": job.note,
        "error": error,
        "metrics": {
            "psnr": finite(job.psnr),
            "ssim": finite(job.ssim),
            "runtime_ms": finite(job.runtime_ms),
            "batch_size": job.batch_size,
        },
        "model_version": job.model_version,
        "attempts": job.attempts,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "links": links,
    }
