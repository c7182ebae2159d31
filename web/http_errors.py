"""The one place where errors become HTTP responses: ``{"error": {"code", "message"[, "field"]}}``."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import InternalError, OperationalError
from werkzeug.exceptions import HTTPException

from web.core.errors import (
    AuthenticationRequired,
    BadRequest,
    DomainError,
    Forbidden,
    IdempotencyConflict,
    InvalidJobState,
    JobNotFound,
    ResultNotAvailable,
    ServerBusy,
    UnsupportedBody,
    UploadRejected,
)
from web.core.queue import QueueUnavailable
from web.core.storage import StorageUnavailable

# Upload codes: the body is too big (413); it is not an image type we take (415); it claims to be an image
# but cannot be used (422).
UPLOAD_STATUS = {
    "too_large": 413,
    "unsupported_media_type": 415,
    "not_an_image": 415,
    "empty": 422,
    "truncated": 422,
    "decompression_bomb": 422,
    "reference_required": 422,
    "missing_image": 422,
}
DOMAIN_STATUS: dict[type[DomainError], int] = {
    JobNotFound: 404,
    InvalidJobState: 409,
    ResultNotAvailable: 409,
    IdempotencyConflict: 409,
    AuthenticationRequired: 401,
    Forbidden: 403,
    ServerBusy: 503,
    UnsupportedBody: 415,
    BadRequest: 400,
}
RETRY_AFTER_S = "5"  # what a 503 tells the client to wait


def status_for(error: DomainError) -> int:
    if isinstance(error, UploadRejected):
        return UPLOAD_STATUS.get(error.code, 422)
    for kind, status in DOMAIN_STATUS.items():
        if isinstance(error, kind):
            return status
    return 400


def error_response(status: int, code: str, message: str, field: str | None = None) -> tuple[Response, int]:
    body: dict[str, str] = {"code": code, "message": message}
    if field:
        body["field"] = field
    response = jsonify(error=body)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="lowlight"'
    return response, status


def _wants_html() -> bool:
    """Portal pages get an HTML error page; the API, probes and scripts get JSON."""
    if request.path.startswith(("/api/", "/healthz", "/readyz", "/metrics")):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def _render(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> tuple[Response | str, int, dict[str, str]]:
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", RETRY_AFTER_S)
    if _wants_html():
        return render_template("error.html", status=status, code=code, message=message), status, headers
    response, status = error_response(status, code, message, field)
    return response, status, headers


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(error: DomainError) -> tuple[Response | str, int, dict[str, str]]:
        return _render(status_for(error), error.code, error.message, getattr(error, "field", None))

    @app.errorhandler(StorageUnavailable)
    def _storage(error: StorageUnavailable) -> tuple[Response | str, int, dict[str, str]]:
        app.logger.warning("storage unavailable: %s", error)
        return _render(503, "storage_unavailable", "object storage is unavailable; try again later")

    @app.errorhandler(QueueUnavailable)
    def _queue(error: QueueUnavailable) -> tuple[Response | str, int, dict[str, str]]:
        app.logger.warning("broker unavailable: %s", error)
        return _render(503, "queue_unavailable", "the job queue is unavailable; try again later")

    @app.errorhandler(OperationalError)
    @app.errorhandler(InternalError)
    def _database(error: OperationalError | InternalError) -> tuple[Response | str, int, dict[str, str]]:
        # Locked, read-only (PostgreSQL's ReadOnlySqlTransaction is an InternalError) or unreachable: not the
        # client's fault, and worth retrying.
        app.logger.warning("database unavailable: %s", str(error).splitlines()[0])
        return _render(503, "database_unavailable", "the database is unavailable; try again later")

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[Response | str, int, dict[str, str]]:
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        if status == 413:
            code = "too_large"
        # Keep what the exception says about itself (Allow on a 405, Retry-After on a 429), not its body type.
        headers = {key: value for key, value in error.get_headers() if key.lower() != "content-type"}
        return _render(status, code, error.description or error.name, headers=headers)
