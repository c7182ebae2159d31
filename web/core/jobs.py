"""Jobs: create from an upload, read, list, cancel, retry, delete.

The order of effects matters: validate everything in memory, insert the row (to get its id), store the
objects under keys derived from that id, commit, and only then enqueue. A rejected upload stores nothing; a
failed store leaves no row; the broker never hears of a job that is not committed.
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from web.core.errors import IdempotencyConflict, InvalidJobState, JobNotFound, ResultNotAvailable, UploadRejected
from web.core.models import ApiToken, Job, JobStatus, utcnow
from web.core.queue import QueueUnavailable
from web.core.settings import Settings
from web.core.storage import ObjectStorage, StorageUnavailable, job_key
from web.core.uploads import ValidatedImage, reference_note, validate_image

log = logging.getLogger(__name__)

Enqueue = Callable[[int], None]
MAX_PAGE = 100


@dataclass(frozen=True)
class Upload:
    """One uploaded file as received: bytes, the user's file name (display only) and the declared type."""

    data: bytes
    filename: str = ""
    content_type: str | None = None


def _scoped(token: ApiToken | None) -> Select[tuple[Job]]:
    """Jobs visible to ``token``: its own; an admin sees all; no token (auth off) sees the anonymous ones."""
    query = select(Job)
    if token is None:
        return query.where(Job.token_id.is_(None))
    if token.is_admin:
        return query
    return query.where(Job.token_id == token.id)


def get_job(session: Session, token: ApiToken | None, job_id: int) -> Job:
    job = session.scalars(_scoped(token).where(Job.id == job_id)).first()
    if job is None:
        raise JobNotFound(job_id)
    return job


def list_jobs(
    session: Session,
    token: ApiToken | None,
    status: JobStatus | None = None,
    limit: int = 20,
    before_id: int | None = None,
) -> tuple[list[Job], int | None]:
    """Newest first; returns the page and the cursor for the next one (None on the last page)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = _scoped(token).order_by(Job.id.desc()).limit(limit + 1)
    if status is not None:
        query = query.where(Job.status == status.value)
    if before_id is not None:
        query = query.where(Job.id < before_id)
    jobs = list(session.scalars(query))
    next_cursor = jobs[limit - 1].id if len(jobs) > limit else None
    return jobs[:limit], next_cursor


def request_fingerprint(image: Upload, reference: Upload | None, contribute: bool) -> str:
    """sha256 over everything an upload asks for: a replay must repeat all of it, not only the image."""
    digest = hashlib.sha256()
    for part in (image.data, reference.data if reference is not None else b"", b"1" if contribute else b"0"):
        digest.update(hashlib.sha256(part).digest())
    digest.update(b"ref" if reference is not None else b"")
    return digest.hexdigest()


def _find_idempotent(session: Session, token: ApiToken | None, key: str, fingerprint: str, image: Upload) -> Job | None:
    owner = Job.token_id.is_(None) if token is None else Job.token_id == token.id
    job = session.scalars(select(Job).where(owner, Job.idempotency_key == key)).first()
    if job is None:
        return None
    if job.request_sha256 is None:  # a job from before migration 0003 only knows its image
        same = job.input_sha256 == hashlib.sha256(image.data).hexdigest()
    else:
        same = job.request_sha256 == fingerprint
    if not same:
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used for a different upload")
    return job


def display_filename(raw: str) -> str:
    """The user's file name for display: control, format (bidi overrides, zero-width) and NUL characters are
    dropped, so a name cannot disguise its extension or break a header or a log line."""
    kept = "".join(ch for ch in raw if unicodedata.category(ch)[0] != "C")
    return kept.strip()[:255] or "image"


def _validate(
    image: Upload, reference: Upload | None, contribute: bool, settings: Settings
) -> tuple[ValidatedImage, ValidatedImage | None]:
    if contribute and reference is None:
        message = "contribute=true needs a reference image to form a training pair"
        raise UploadRejected("reference", "reference_required", message)
    valid_image = validate_image(image.data, "image", image.filename, image.content_type, settings)
    valid_reference = None
    if reference is not None:
        valid_reference = validate_image(
            reference.data, "reference", reference.filename, reference.content_type, settings
        )
    return valid_image, valid_reference


def _store(storage: ObjectStorage, stored: list[str], key: str, image: ValidatedImage) -> str:
    storage.put_bytes(key, image.data, image.content_type)
    stored.append(key)
    return key


def _remove_quietly(storage: ObjectStorage, keys: list[str]) -> None:
    """Undo stores after a failure; if storage is down too, the objects stay (logged), the original error
    wins."""
    for key in keys:
        try:
            storage.delete(key)
        except StorageUnavailable:
            log.warning("could not remove orphaned object %s", key)


def create_job(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    token: ApiToken | None,
    image: Upload,
    reference: Upload | None = None,
    contribute: bool = False,
    idempotency_key: str | None = None,
    enqueue: Enqueue | None = None,
) -> Job:
    """Validate, store and commit a job, then enqueue it. Raises UploadRejected, IdempotencyConflict,
    StorageUnavailable. A repeated upload with the same Idempotency-Key returns the first job unchanged."""
    fingerprint = request_fingerprint(image, reference, contribute)
    if idempotency_key:
        existing = _find_idempotent(session, token, idempotency_key, fingerprint, image)
        if existing is not None:
            return existing
    valid_image, valid_reference = _validate(image, reference, contribute, settings)
    job = Job(
        token_id=token.id if token else None,
        status=JobStatus.QUEUED.value,
        original_filename=display_filename(image.filename),
        input_content_type=valid_image.content_type,
        contribute=contribute,
        idempotency_key=idempotency_key or None,
        request_sha256=fingerprint,
        input_sha256=valid_image.sha256,
        width=valid_image.width,
        height=valid_image.height,
        note=reference_note(valid_image, valid_reference),
    )
    session.add(job)
    try:
        session.flush()  # assigns job.id, which the storage keys are made of
    except IntegrityError:
        session.rollback()  # a concurrent request with the same Idempotency-Key won the race
        if idempotency_key:
            winner = _find_idempotent(session, token, idempotency_key, fingerprint, image)
            if winner is not None:
                return winner
        raise
    stored: list[str] = []
    try:
        input_key = job_key(job.id, f"input.{valid_image.extension}")
        job.input_key = _store(storage, stored, input_key, valid_image)
        if valid_reference is not None:
            name = f"reference.{valid_reference.extension}"
            job.reference_key = _store(storage, stored, job_key(job.id, name), valid_reference)
        session.commit()
    except BaseException:
        session.rollback()
        _remove_quietly(storage, stored)
        raise
    _enqueue(enqueue, job.id)
    return job


def _enqueue(enqueue: Enqueue | None, job_id: int) -> None:
    """Send after commit. If the broker is down the job stays queued in the database (the row is the
    truth) and the scheduler's sweep of stale queued jobs sends it again."""
    if enqueue is None:
        return
    try:
        enqueue(job_id)
    except QueueUnavailable as exc:
        log.warning("job %s committed but not enqueued (%s); the sweep will resend it", job_id, exc)


def _transition(session: Session, job: Job, source: JobStatus, action: str, **values: object) -> Job:
    """Move ``job`` from ``source`` with one conditional UPDATE, so a worker changing it at the same time wins
    cleanly instead of being overwritten."""
    result = session.execute(
        update(Job).where(Job.id == job.id, Job.status == source.value).values(updated_at=utcnow(), **values)
    )
    session.commit()
    session.refresh(job)
    if result.rowcount != 1:
        raise InvalidJobState(job.id, job.status, action)
    return job


def cancel_job(session: Session, token: ApiToken | None, job_id: int) -> Job:
    job = get_job(session, token, job_id)
    return _transition(
        session, job, JobStatus.QUEUED, "cancel", status=JobStatus.CANCELED.value, completed_at=utcnow()
    )


def retry_job(session: Session, token: ApiToken | None, job_id: int, enqueue: Enqueue | None = None) -> Job:
    """Put a failed job back in the queue; its input is still in storage."""
    job = get_job(session, token, job_id)
    job = _transition(
        session,
        job,
        JobStatus.FAILED,
        "retry",
        status=JobStatus.QUEUED.value,
        error_code=None,
        error_message=None,
        started_at=None,
        completed_at=None,
    )
    _enqueue(enqueue, job.id)
    return job


def delete_job(session: Session, storage: ObjectStorage, token: ApiToken | None, job_id: int) -> None:
    """Remove the job's objects, then its row. A job being processed cannot be deleted (its result would be
    orphaned); cancel it or wait."""
    job = get_job(session, token, job_id)
    if job.status == JobStatus.PROCESSING.value:
        raise InvalidJobState(job.id, job.status, "delete")
    for key in job.object_keys():
        storage.delete(key)
    session.delete(job)
    session.commit()


def ensure_result(job: Job) -> str:
    """The result's key, or ResultNotAvailable while the job has none."""
    if job.status != JobStatus.SUCCEEDED.value or not job.result_key:
        raise ResultNotAvailable(f"job {job.id} is {job.status}; it has no result")
    return job.result_key


def stream_object(storage: ObjectStorage, job: Job, kind: str) -> tuple[Iterator[bytes], str]:
    """Chunks and content type of a job's ``input``, ``reference`` or ``result`` object (never read whole)."""
    if kind == "result":
        key, content_type = ensure_result(job), "image/png"
    elif kind == "reference" and job.reference_key:
        key, content_type = job.reference_key, _content_type_of(job.reference_key)
    elif kind == "input":
        key, content_type = job.input_key, job.input_content_type
    else:
        raise JobNotFound(job.id)
    try:
        return storage.open_stream(key), content_type
    except FileNotFoundError:
        raise ResultNotAvailable(f"the {kind} of job {job.id} is missing from storage") from None


def _content_type_of(key: str) -> str:
    types = {"png": "image/png", "jpg": "image/jpeg", "tif": "image/tiff", "bmp": "image/bmp"}
    types |= {"webp": "image/webp", "gif": "image/gif", "ppm": "image/x-portable-pixmap"}
    return types.get(key.rsplit(".", 1)[-1], "application/octet-stream")
