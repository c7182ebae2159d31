"""/api/v1/models and /api/v1/training-runs: what they answer, who may act, and the portal's models page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.web.conftest import bearer, sqlite_settings
from tests.web.test_openapi import check
from web.app import create_app
from web.core.db import upgrade_database
from web.core.registry import services as registry
from web.core.tokens import create_token
from web.registry.views import SEND_RETRAIN

CARD = {"architecture": "mirnet-lite", "arguments": {"groups": 1, "blocks": 1, "channels": 4}}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    settings = sqlite_settings(tmp_path, require_auth=True)
    upgrade_database(settings.database_url)
    created = create_app(settings, enqueue=lambda job_id: None, check_broker=lambda: None)
    sent: list[int] = []
    created.extensions[SEND_RETRAIN] = sent.append
    created.config["sent_runs"] = sent
    yield created
    created.extensions["session_factory"].kw["bind"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tokens(app: Flask) -> dict[str, dict[str, str]]:
    with app.extensions["session_factory"]() as session:
        return {name: bearer(create_token(session, name, is_admin=name == "admin")[1]) for name in ("alice", "admin")}


@pytest.fixture
def versions(app: Flask) -> list[str]:
    """v1 active (scored), v2 a candidate kept by the gate."""
    storage = app.extensions["lowlight"].storage
    with app.extensions["session_factory"]() as session:
        first = registry.register_version(session, storage, b"w1", CARD, state="active", scores=(14.0, 0.6, 1))
        second = registry.register_version(
            session, storage, b"w2", CARD, parent=first, scores=(14.01, 0.6, 1), reason="PSNR gain below 0.05 dB"
        )
        return [first.version, second.version]


def test_models_are_listed_with_scores_and_state(client: FlaskClient, tokens, versions: list[str]) -> None:
    response = client.get("/api/v1/models", headers=tokens["alice"])
    check(response, "/api/v1/models", "GET")
    body = response.get_json()
    assert body["active"] == "v1"
    assert [(m["version"], m["state"], m["parent"]) for m in body["models"]] == [
        ("v1", "active", None),
        ("v2", "candidate", "v1"),
    ]
    assert body["models"][1]["holdout"] == {"psnr": 14.01, "ssim": 0.6, "pairs": 1}
    assert client.get("/api/v1/models").status_code == 401


def test_an_admin_promotes_and_rolls_back(client: FlaskClient, tokens, versions: list[str]) -> None:
    refused = client.post("/api/v1/models/v2/promote", headers=tokens["alice"])
    check(refused, "/api/v1/models/{version}/promote", "POST")
    assert refused.status_code == 403

    promoted = client.post("/api/v1/models/v2/promote", headers=tokens["admin"])
    check(promoted, "/api/v1/models/{version}/promote", "POST")
    assert promoted.get_json()["state"] == "active"
    again = client.post("/api/v1/models/v2/promote", headers=tokens["admin"])
    assert again.status_code == 409
    missing = client.post("/api/v1/models/v9/rollback", headers=tokens["admin"])
    check(missing, "/api/v1/models/{version}/rollback", "POST")
    assert missing.status_code == 404

    back = client.post("/api/v1/models/v1/rollback", headers=tokens["admin"])
    check(back, "/api/v1/models/{version}/rollback", "POST")
    assert back.get_json()["state"] == "active" and back.get_json()["reason"] == "rolled back from v2"
    states = {m["version"]: m["state"] for m in client.get("/api/v1/models", headers=tokens["admin"]).json["models"]}
    assert states == {"v1": "active", "v2": "retired"}


def test_an_admin_starts_a_training_run_and_polls_it(app: Flask, client: FlaskClient, tokens) -> None:
    assert client.post("/api/v1/training-runs", headers=tokens["alice"]).status_code == 403
    bad = client.post("/api/v1/training-runs", json={"steps": 0}, headers=tokens["admin"])
    check(bad, "/api/v1/training-runs", "POST")
    assert bad.status_code == 400

    started = client.post("/api/v1/training-runs", json={"steps": 7}, headers=tokens["admin"])
    check(started, "/api/v1/training-runs", "POST")
    run = started.get_json()
    assert started.status_code == 202 and run["status"] == "queued" and run["trigger"] == "api"
    assert run["progress"] == {"step": 0, "steps": 7, "loss": None, "eta_s": None}
    assert app.config["sent_runs"] == [run["id"]]

    polled = client.get(started.headers["Location"], headers=tokens["admin"])
    check(polled, "/api/v1/training-runs/{run_id}", "GET")
    assert polled.get_json()["id"] == run["id"]
    listed = client.get("/api/v1/training-runs", headers=tokens["admin"])
    check(listed, "/api/v1/training-runs", "GET")
    assert [r["id"] for r in listed.get_json()["runs"]] == [run["id"]]
    assert client.get("/api/v1/training-runs/99", headers=tokens["admin"]).status_code == 404


def test_the_models_page_plots_holdout_psnr_and_shows_the_running_retraining(
    app: Flask, client: FlaskClient, tokens, versions: list[str]
) -> None:
    with app.extensions["session_factory"]() as session:
        run = registry.create_run(session, app.extensions["lowlight"].settings, "schedule", steps=50)
        run.status, run.step, run.loss, run.eta_s = "running", 10, 0.1234, 42.0
        session.commit()
    page = client.get("/models", headers=tokens["admin"])  # training runs are shown to admins
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="psnr-plot"' in html and html.count("<circle") == 2
    assert 'step <span id="run-step">10</span> of 50' in html and "0.1234" in html
    assert "0 new pairs collected since the last run" in html
    assert client.get("/models").status_code == 302  # sign in first


def test_a_run_the_broker_never_heard_of_is_failed_not_left_queued(app: Flask, client: FlaskClient, tokens) -> None:
    from web.core.queue import QueueUnavailable

    def broker_down(run_id: int) -> None:
        raise QueueUnavailable("broker unreachable")

    app.extensions[SEND_RETRAIN] = broker_down
    response = client.post("/api/v1/training-runs", headers=tokens["admin"])
    check(response, "/api/v1/training-runs", "POST")
    assert response.status_code == 503
    (run,) = client.get("/api/v1/training-runs", headers=tokens["admin"]).get_json()["runs"]
    assert run["status"] == "failed" and "broker" in run["reason"]


def test_the_database_allows_one_active_version(app: Flask, versions: list[str]) -> None:
    from sqlalchemy.exc import IntegrityError

    storage = app.extensions["lowlight"].storage
    with app.extensions["session_factory"]() as session, pytest.raises(IntegrityError):
        registry.register_version(session, storage, b"w3", CARD, state="active")
