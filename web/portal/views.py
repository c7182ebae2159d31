"""Portal pages. They read jobs through the same service functions as the API; uploads go through the API.

Images are served by the app (never by presigned S3 URLs) so the browser needs no access to the object
store. With authentication on, a person signs in once by pasting a token; it is kept in the signed session.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from web.api.serializers import download_name, job_to_dict
from web.core import jobs as job_service
from web.core.errors import AuthenticationRequired, JobNotFound
from web.core.models import ApiToken
from web.core.tokens import authenticate, end_session, start_session
from web.platform import current_token, platform
from web.request_session import get_session
from web.security import safe_next

bp = Blueprint("portal", __name__)
IMAGE_KINDS = ("input", "reference", "result")


def _signed_in() -> tuple[bool, ApiToken | None]:
    """(allowed, token): allowed is False when auth is on and the visitor has not signed in."""
    try:
        return True, current_token()
    except AuthenticationRequired:
        return False, None


@bp.app_context_processor
def _portal_context() -> dict[str, object]:
    settings = platform().settings
    return {"auth_required": settings.auth_required, "bind": f"{settings.host}:{settings.port}"}


@bp.get("/")
def upload_page() -> str | BaseResponse:
    allowed, token = _signed_in()
    if not allowed:
        return redirect(url_for("portal.login", next=request.path))
    return render_template(
        "upload.html", token=token, max_upload_mb=platform().settings.max_upload_bytes >> 20
    )


@bp.get("/jobs")
def jobs_page() -> str | BaseResponse:
    allowed, token = _signed_in()
    if not allowed:
        return redirect(url_for("portal.login", next=request.path))
    jobs, _ = job_service.list_jobs(get_session(), token, limit=100)
    return render_template("jobs.html", jobs=[job_to_dict(job) for job in jobs], token=token)


@bp.get("/jobs/<int:job_id>")
def job_page(job_id: int) -> str | BaseResponse:
    allowed, token = _signed_in()
    if not allowed:
        return redirect(url_for("portal.login", next=request.path))
    job = job_service.get_job(get_session(), token, job_id)
    return render_template("job.html", job=job_to_dict(job), token=token)


@bp.get("/jobs/<int:job_id>/files/<kind>")
def job_file(job_id: int, kind: str) -> Response:
    """An image of the job through the app; ``?download=1`` makes the browser save it."""
    if kind not in IMAGE_KINDS:
        raise JobNotFound(job_id)
    job = job_service.get_job(get_session(), current_token(), job_id)
    chunks, content_type = job_service.stream_object(platform().storage, job, kind)
    response = Response(chunks, mimetype=content_type)
    response.headers["Cache-Control"] = "private, max-age=60"
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="{download_name(job, kind)}"'
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse:
    error = None
    if request.method == "POST":
        db = get_session()
        token = authenticate(db, request.form.get("token", "").strip())
        if token is not None:
            end_session(db, session.get("sid"))
            session.clear()
            session["sid"] = start_session(db, token)
            return redirect(safe_next(request.args.get("next")))
        error = "That token is not valid."
    return render_template("login.html", error=error), 401 if error else 200


@bp.post("/logout")
def logout() -> BaseResponse:
    end_session(get_session(), session.get("sid"))
    session.clear()
    return redirect(url_for("portal.login"))
