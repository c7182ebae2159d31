"""Probes and metrics: /healthz says whether auth is off, /readyz checks each dependency, /metrics reads the
job table so it agrees across processes."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.services import free_port
from tests.web.conftest import Images, Recorder, sqlite_settings, upload
from web.app import create_app
from web.core.db import upgrade_database
from web.core.models import Job
from web.core.queue import CeleryEnqueuer
from web.core.settings import Settings


def test_healthz_says_auth_is_off(client: FlaskClient) -> None:
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["auth_required"] is False
    assert "authentication is off" in body["warning"]


def test_healthz_with_auth_on(auth_app: Flask) -> None:
    body = auth_app.test_client().get("/healthz").get_json()
    assert body == {"status": "ok", "auth_required": True}


def test_readyz_checks_database_broker_and_storage(tmp_path: Path) -> None:
    """The default broker (kombu's SQLAlchemy transport on SQLite) needs no server and is really checked."""
    settings = sqlite_settings(tmp_path)
    upgrade_database(settings.database_url)
    client = create_app(settings, enqueue=Recorder()).test_client()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }


def test_readyz_reports_a_broker_that_is_down(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    upgrade_database(settings.database_url)
    enqueuer = CeleryEnqueuer(settings)
    response = (
        create_app(settings, enqueue=Recorder(), check_broker=enqueuer.check).test_client().get("/readyz")
    )
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["broker"].startswith("error") and checks["database"] == checks["storage"] == "ok"


def _s3_down(tmp_path: Path) -> Settings:
    """S3 storage pointed at a closed port on this machine: what a stopped SeaweedFS looks like."""
    settings = sqlite_settings(
        tmp_path,
        storage_backend="s3",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
        s3_access_key="key",
        s3_secret_key="secret",
        s3_connect_timeout=0.5,
    )
    upgrade_database(settings.database_url)
    return settings


def test_readyz_with_storage_down(tmp_path: Path) -> None:
    settings = _s3_down(tmp_path)
    client = create_app(settings, enqueue=Recorder(), check_broker=lambda: None).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["storage"].startswith("error") and body["checks"]["database"] == "ok"


def test_upload_with_storage_down_is_503_and_stores_no_row(tmp_path: Path, images: Images) -> None:
    settings = _s3_down(tmp_path)
    enqueued = Recorder()
    app = create_app(settings, enqueue=enqueued, check_broker=lambda: None)
    response = upload(app.test_client(), images.low)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    with app.extensions["session_factory"]() as session:
        assert session.query(Job).count() == 0
    assert enqueued == []


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_come_from_the_job_table(app: Flask, client: FlaskClient, images: Images) -> None:
    ids = [upload(client, images.low).get_json()["id"] for _ in range(4)]
    with app.extensions["session_factory"]() as session:
        for job_id, runtime_ms, batch in ((ids[0], 400.0, 2), (ids[1], 3000.0, 2)):
            job = session.get(Job, job_id)
            job.status, job.runtime_ms, job.batch_size = "succeeded", runtime_ms, batch
        session.get(Job, ids[2]).status = "failed"
        session.commit()
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = _samples(response.get_data(as_text=True))
    assert samples[("lowlight_jobs", (("status", "queued"),))] == 1
    assert samples[("lowlight_jobs", (("status", "succeeded"),))] == 2
    assert samples[("lowlight_jobs", (("status", "failed"),))] == 1
    assert samples[("lowlight_jobs", (("status", "processing"),))] == 0
    assert samples[("lowlight_queue_depth", ())] == 1
    assert 0 <= samples[("lowlight_oldest_queued_job_age_seconds", ())] < 60
    assert samples[("lowlight_job_processing_seconds_bucket", (("le", "0.5"),))] == 1
    assert samples[("lowlight_job_processing_seconds_bucket", (("le", "5.0"),))] == 2
    assert samples[("lowlight_job_processing_seconds_count", ())] == 2
    assert samples[("lowlight_job_processing_seconds_sum", ())] == pytest.approx(3.4)
    assert samples[("lowlight_job_batch_size_bucket", (("le", "1"),))] == 0
    assert samples[("lowlight_job_batch_size_bucket", (("le", "2"),))] == 2
    assert samples[("lowlight_job_batch_size_bucket", (("le", "+Inf"),))] == 2


def test_two_apps_in_one_process_do_not_share_metrics(tmp_path: Path, app: Flask) -> None:
    other = sqlite_settings(tmp_path / "other")
    upgrade_database(other.database_url)
    second = create_app(other, enqueue=Recorder(), check_broker=lambda: None)
    assert second.extensions["metrics_registry"] is not app.extensions["metrics_registry"]
    assert second.test_client().get("/metrics").status_code == 200


@pytest.mark.integration
def test_readyz_against_postgres_redis_and_seaweedfs(
    seaweedfs, s3_bucket: str, pg_migrated: str, redis_url: str
) -> None:
    settings = seaweedfs.settings(s3_bucket, database_url=pg_migrated, broker_url=redis_url, secret_key="x")
    response = create_app(settings, enqueue=Recorder()).test_client().get("/readyz")
    assert response.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "storage": "ok"},
    }
