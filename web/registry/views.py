"""The registry over HTTP: ``/api/v1/models`` and ``/api/v1/training-runs``, and the portal's models page.

Reading the models is open to any caller the API admits; promoting, rolling back and starting or reading
training runs take an admin token, even in the embedded default without tokens (web/security.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, render_template, request, url_for
from kombu.exceptions import OperationalError
from werkzeug.wrappers import Response as BaseResponse

from web.api.serializers import finite, iso
from web.core.broker import TRAINING_QUEUE
from web.core.errors import AuthenticationRequired, BadRequest, DomainError, UnsupportedBody
from web.core.queue import RETRAIN_TASK, CeleryEnqueuer, QueueUnavailable
from web.core.registry import pairs as pair_service
from web.core.registry import services as registry
from web.core.registry.models import ModelVersion, RunStatus, TrainingRun
from web.core.settings import Settings
from web.http_errors import error_response
from web.platform import current_token, platform
from web.request_session import get_session
from web.security import require_admin

api = Blueprint("registry_api", __name__, url_prefix="/api/v1")
portal = Blueprint("registry_portal", __name__)

SEND_RETRAIN = "registry_send_retrain"


def make_send_retrain(settings: Settings) -> Callable[[int], None]:
    """``send(run_id)``: the worker's retraining task by name, on the training queue (no worker import)."""
    enqueuer = CeleryEnqueuer(settings)

    def send(run_id: int) -> None:
        try:
            enqueuer.app.send_task(RETRAIN_TASK, kwargs={"run_id": run_id, "trigger": "api"}, queue=TRAINING_QUEUE)
        except (OperationalError, OSError) as exc:
            raise QueueUnavailable(f"broker unreachable: {exc}") from exc

    return send


def init_app(app: Flask, send_retrain: Callable[[int], None] | None = None) -> None:
    app.extensions[SEND_RETRAIN] = send_retrain or make_send_retrain(app.extensions["lowlight"].settings)
    app.register_blueprint(api)
    app.register_blueprint(portal)


@api.errorhandler(registry.VersionNotFound)
@api.errorhandler(registry.RunNotFound)
def _not_found(error: DomainError) -> tuple[Response, int]:
    return error_response(404, error.code, error.message)


@api.errorhandler(registry.InvalidVersionState)
def _conflict(error: DomainError) -> tuple[Response, int]:
    return error_response(409, error.code, error.message)


def version_to_dict(row: ModelVersion, names: dict[int, str]) -> dict[str, Any]:
    return {
        "version": row.version,
        "state": row.state,
        "architecture": row.architecture,
        "arguments": row.arguments,
        "parent": names.get(row.parent_id) if row.parent_id else None,
        "training_run": row.training_run_id,
        "lineage": row.lineage,
        "holdout": {"psnr": finite(row.holdout_psnr), "ssim": finite(row.holdout_ssim), "pairs": row.holdout_pairs},
        "sha256": row.sha256,
        "reason": row.reason,
        "created_at": iso(row.created_at),
        "activated_at": iso(row.activated_at),
    }


def run_to_dict(run: TrainingRun, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "trigger": run.trigger,
        "progress": {"step": run.step, "steps": run.steps, "loss": finite(run.loss), "eta_s": run.eta_s},
        "base_version": names.get(run.base_version_id) if run.base_version_id else None,
        "candidate_version": names.get(run.candidate_version_id) if run.candidate_version_id else None,
        "pairs": {"new": run.new_pairs, "replay": run.replay_pairs, "holdout": run.holdout_pairs},
        "holdout": {
            "active": {"psnr": finite(run.active_psnr), "ssim": finite(run.active_ssim)},
            "candidate": {"psnr": finite(run.candidate_psnr), "ssim": finite(run.candidate_ssim)},
        },
        "decision": run.decision,
        "reason": run.reason,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at),
        "links": {"self": url_for("registry_api.get_training_run", run_id=run.id)},
    }


def _names() -> dict[int, str]:
    return {row.id: row.version for row in registry.list_versions(get_session())}


@api.get("/models")
def list_models() -> Response:
    current_token()
    rows = registry.list_versions(get_session())
    names = {row.id: row.version for row in rows}
    active = next((row.version for row in rows if row.state == registry.ACTIVE), None)
    return jsonify(active=active, models=[version_to_dict(row, names) for row in rows])


@api.post("/models/<version>/promote")
def promote_model(version: str) -> Response:
    require_admin()
    row = registry.promote(get_session(), version)
    return jsonify(version_to_dict(row, _names()))


@api.post("/models/<version>/rollback")
def rollback_model(version: str) -> Response:
    require_admin()
    row = registry.rollback(get_session(), version)
    return jsonify(version_to_dict(row, _names()))


def _requested_steps(most: int) -> int | None:
    """``{"steps": N}`` from a JSON body (an empty body asks for the configured steps)."""
    if not request.get_data():
        return None
    if not request.is_json:
        raise UnsupportedBody("the body must be JSON (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object such as {"steps": 200}')
    steps = body.get("steps")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or not 0 < steps <= most):
        raise BadRequest(f"steps={steps!r}: use an integer from 1 to {most}")
    return steps


@api.post("/training-runs")
def start_training_run() -> tuple[Response, int, dict[str, str]]:
    require_admin()
    settings = platform().settings
    steps = _requested_steps(settings.retrain_max_steps)
    session = get_session()
    run = registry.create_run(session, settings, "api", steps)
    try:
        current_app.extensions[SEND_RETRAIN](run.id)
    except QueueUnavailable:
        registry.finish_run(session, run, RunStatus.FAILED, "the broker was unavailable; the run never started")
        raise
    location = url_for("registry_api.get_training_run", run_id=run.id)
    return jsonify(run_to_dict(run, _names())), 202, {"Location": location}


@api.get("/training-runs")
def list_training_runs() -> Response:
    require_admin()
    names = _names()
    return jsonify(runs=[run_to_dict(run, names) for run in registry.list_runs(get_session())])


@api.get("/training-runs/<int:run_id>")
def get_training_run(run_id: int) -> Response:
    require_admin()
    return jsonify(run_to_dict(registry.get_run(get_session(), run_id), _names()))


@portal.get("/models")
def models_page() -> str | BaseResponse:
    try:
        token = current_token()
    except AuthenticationRequired:
        return redirect(url_for("portal.login", next=request.path))
    session = get_session()
    rows = registry.list_versions(session)
    names = {row.id: row.version for row in rows}
    # Training runs are the admin's, as in the API.
    runs = registry.list_runs(session, limit=10) if token is not None and token.is_admin else []
    return render_template(
        "models.html",
        token=token,
        versions=[version_to_dict(row, names) for row in rows],
        runs=[run_to_dict(run, names) for run in runs],
        running=next((run_to_dict(r, names) for r in runs if r.status in registry.IN_PROGRESS), None),
        new_pairs=pair_service.count_new(session),
        holdout_pairs=len(pair_service.holdout_pairs(session)),
        plot=psnr_plot(rows),
    )


def psnr_plot(rows: list[ModelVersion], width: int = 480, height: int = 160) -> dict[str, Any]:
    """Points of an inline SVG: holdout PSNR (y) over versions (x), for the versions that have a score."""
    scored = [(row.version, row.holdout_psnr, row.state) for row in rows if row.holdout_psnr is not None]
    if not scored:
        return {"points": [], "width": width, "height": height}
    low, high = min(s[1] for s in scored), max(s[1] for s in scored)
    span, pad = (high - low) or 1.0, 20
    step = (width - 2 * pad) / max(len(scored) - 1, 1)
    points = [
        {
            "x": round(pad + i * step, 1),
            "y": round(height - pad - (psnr - low) / span * (height - 2 * pad), 1),
            "version": version,
            "psnr": round(psnr, 2),
            "state": state,
        }
        for i, (version, psnr, state) in enumerate(scored)
    ]
    return {"points": points, "width": width, "height": height, "low": round(low, 2), "high": round(high, 2)}
