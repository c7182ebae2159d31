"""The JSON API under /api/v1. Views parse the request, call one service function and serialize the job."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, redirect, request, url_for
from werkzeug.datastructures import FileStorage

from web.api.serializers import download_name, job_to_dict
from web.core import jobs as job_service
from web.core.errors import BadRequest, UploadRejected
from web.core.models import JobStatus
from web.platform import current_token, platform
from web.request_session import get_session
from web.security import MAX_ID

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_IDEMPOTENCY_KEY = 255  # the column's width
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _upload(part: FileStorage | None) -> job_service.Upload | None:
    """A multipart file part as an Upload; a part with no file name and no bytes (an empty form input) is
    absent."""
    if part is None:
        return None
    data = part.read()
    if not data and not part.filename:
        return None
    return job_service.Upload(data=data, filename=part.filename or "", content_type=part.mimetype or None)


def _contribute() -> bool:
    value = request.form.get("contribute", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise BadRequest(f"contribute={value!r}: use true or false")


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high] (as the OpenAPI document says), else a 400."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"{name}={raw!r}: use an integer from {low} to {high}")
    return value


def _idempotency_key() -> str | None:
    """The Idempotency-Key header; one longer than the column is refused, never cut (cut keys would collide)."""
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadRequest(f"the Idempotency-Key has {len(key)} characters; the most is {MAX_IDEMPOTENCY_KEY}")
    return key or None


@bp.post("/jobs")
def create_job() -> tuple[Response, int, dict[str, str]]:
    if "image" not in request.files:
        raise UploadRejected("image", "missing_image", "the multipart field 'image' is required")
    image = _upload(request.files["image"]) or job_service.Upload(data=b"")
    wired = platform()
    job = job_service.create_job(
        get_session(),
        wired.storage,
        wired.settings,
        current_token(),
        image=image,
        reference=_upload(request.files.get("reference")),
        contribute=_contribute(),
        idempotency_key=_idempotency_key(),
        enqueue=wired.enqueue,
    )
    return jsonify(job_to_dict(job)), 202, {"Location": url_for("api.get_job", job_id=job.id)}


@bp.get("/jobs")
def list_jobs() -> Response:
    raw_status = request.args.get("status") or None
    try:
        status = JobStatus(raw_status) if raw_status else None
    except ValueError:
        raise BadRequest(
            f"status={raw_status!r}: use one of {', '.join(s.value for s in JobStatus)}"
        ) from None
    limit = _int_arg("limit", 20, 1, job_service.MAX_PAGE) or 20
    before_id = _int_arg("cursor", None, 1, MAX_ID)
    jobs, next_cursor = job_service.list_jobs(
        get_session(), current_token(), status=status, limit=limit, before_id=before_id
    )
    next_link = None
    if next_cursor is not None:
        next_link = url_for("api.list_jobs", status=raw_status, limit=limit, cursor=next_cursor)
    return jsonify(
        jobs=[job_to_dict(job) for job in jobs], next_cursor=next_cursor, links={"next": next_link}
    )


@bp.get("/jobs/<int:job_id>")
def get_job(job_id: int) -> Response:
    return jsonify(job_to_dict(job_service.get_job(get_session(), current_token(), job_id)))


@bp.post("/jobs/<int:job_id>/cancel")
def cancel_job(job_id: int) -> Response:
    return jsonify(job_to_dict(job_service.cancel_job(get_session(), current_token(), job_id)))


@bp.post("/jobs/<int:job_id>/retry")
def retry_job(job_id: int) -> tuple[Response, int]:
    job = job_service.retry_job(get_session(), current_token(), job_id, enqueue=platform().enqueue)
    return jsonify(job_to_dict(job)), 202


@bp.get("/jobs/<int:job_id>/result")
def get_result(job_id: int) -> Response:
    """The enhanced PNG; with PRESIGN_RESULTS on and S3 behind, a redirect to a short-lived presigned URL."""
    wired = platform()
    job = job_service.get_job(get_session(), current_token(), job_id)
    if wired.settings.presign_results:
        job_service.ensure_result(job)
        url = wired.storage.presigned_url(job.result_key or "", wired.settings.presign_expires_s)
        if url:
            return redirect(url, code=302)
    chunks, content_type = job_service.stream_object(wired.storage, job, "result")
    response = Response(chunks, mimetype=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{download_name(job, "result")}"'
    return response


@bp.delete("/jobs/<int:job_id>")
def delete_job(job_id: int) -> tuple[str, int]:
    job_service.delete_job(get_session(), platform().storage, current_token(), job_id)
    return "", 204
