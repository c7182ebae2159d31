"""Domain errors raised by the service functions. They know nothing of HTTP; web/http_errors.py maps them."""

from __future__ import annotations


class DomainError(Exception):
    """An error the client can act on; ``code`` is stable and machine-readable, ``message`` is one line."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class UploadRejected(DomainError):
    """An upload that will not become a job. Nothing has been stored when this is raised.

    Codes: ``missing_image``, ``empty``, ``not_an_image``, ``truncated``, ``too_large``,
    ``decompression_bomb``,
    ``unsupported_media_type``, ``reference_required``.
    """

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message, code)
        self.field = field


class JobNotFound(DomainError):
    """No such job for this caller (another token's job is reported the same way, so ids leak nothing)."""

    code = "not_found"

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class InvalidJobState(DomainError):
    """The job's status does not allow the action (cancel a finished job, retry a succeeded one...)."""

    code = "invalid_state"

    def __init__(self, job_id: int, status: str, action: str) -> None:
        super().__init__(f"job {job_id} is {status}; cannot {action} it")
        self.job_id = job_id
        self.status = status


class ResultNotAvailable(DomainError):
    code = "result_not_available"


class IdempotencyConflict(DomainError):
    """The Idempotency-Key was already used for a different upload."""

    code = "idempotency_key_reused"


class AuthenticationRequired(DomainError):
    code = "unauthorized"


class BadRequest(DomainError):
    code = "bad_request"


class Forbidden(DomainError):
    """The caller is known but may not do this (admin actions, state changes from another site's page)."""

    code = "forbidden"


class ServerBusy(DomainError):
    """Every slot for this kind of work is taken; the client should retry shortly (503)."""

    code = "busy"


class UnsupportedBody(DomainError):
    """The request body is not of the type the endpoint reads (415)."""

    code = "unsupported_media_type"
