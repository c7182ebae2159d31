"""The JSON API through Flask's test client: status codes, error bodies, tokens, idempotency, job actions."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.web.conftest import Images, Recorder, bearer, upload
from web.core.models import Job, JobStatus


def _stored_files(settings_dir: Path) -> list[Path]:
    root = settings_dir / "objects"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_upload_returns_202_with_the_job(client: FlaskClient, images: Images, enqueued: Recorder) -> None:
    response = upload(client, images.low, reference=images.high, contribute="true")
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["error"] is None
    assert job["metrics"] == {"psnr": None, "ssim": None, "runtime_ms": None, "batch_size": None}
    assert job["links"] == {
        "self": f"/api/v1/jobs/{job['id']}",
        "result": None,
        "cancel": f"/api/v1/jobs/{job['id']}/cancel",
    }
    assert job["created_at"].endswith("Z") and job["started_at"] is None and job["completed_at"] is None
    assert job["contribute"] is True and job["has_reference"] is True
    assert enqueued == [job["id"]]
    assert client.get(f"/api/v1/jobs/{job['id']}").get_json() == job


BAD = [
    # (name, image, content type, extra form, status, code)
    ("zero bytes", b"", "image/png", {}, 422, "empty"),
    ("not an image", b"GIF? no, plain text", "image/png", {}, 415, "not_an_image"),
    ("wrong content type", "LOW", "application/pdf", {}, 415, "unsupported_media_type"),
    ("truncated", "LOW[:4000]", "image/png", {}, 422, "truncated"),
    ("decompression bomb", "BOMB", "image/png", {}, 422, "decompression_bomb"),
    ("over the byte limit", "HUGE", "image/png", {}, 413, "too_large"),
    ("contribute without reference", "LOW", "image/png", {"contribute": "true"}, 422, "reference_required"),
    ("bad contribute value", "LOW", "image/png", {"contribute": "perhaps"}, 400, "bad_request"),
]


def _image(value: object, images: Images) -> bytes:
    return {
        "LOW": images.low,
        "LOW[:4000]": images.low[:4000],
        "BOMB": Images.bomb(),
        "HUGE": images.low + b"\0" * (2 * 2**20),
    }.get(value, value)  # type: ignore[arg-type, return-value]


@pytest.mark.parametrize(
    ("name", "image", "content_type", "form", "status", "code"), BAD, ids=[b[0] for b in BAD]
)
def test_bad_uploads_are_clear_json_errors_and_store_nothing(
    client: FlaskClient,
    db_session: Session,
    tmp_path: Path,
    images: Images,
    enqueued: Recorder,
    name: str,
    image: object,
    content_type: str,
    form: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = upload(client, _image(image, images), content_type=content_type, **form)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"] and "\n" not in error["message"]
    assert db_session.scalar(select(func.count()).select_from(Job)) == 0
    assert _stored_files(tmp_path) == []
    assert enqueued == []


def test_missing_image_field(client: FlaskClient) -> None:
    response = client.post("/api/v1/jobs", data={"contribute": "false"}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "missing_image",
        "message": "the multipart field 'image' is required",
        "field": "image",
    }


def test_request_body_over_the_limit_is_413_json(client: FlaskClient, images: Images) -> None:
    response = upload(client, b"\0" * (5 * 2**20 + 10))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"


def test_idempotency_key_makes_a_retried_upload_safe(
    client: FlaskClient, images: Images, enqueued: Recorder
) -> None:
    first = upload(client, images.low, headers={"Idempotency-Key": "upload-1"})
    second = upload(client, images.low, headers={"Idempotency-Key": "upload-1"})
    assert first.status_code == second.status_code == 202
    assert first.get_json()["id"] == second.get_json()["id"]
    assert enqueued == [first.get_json()["id"]]
    conflict = upload(client, images.other_low, headers={"Idempotency-Key": "upload-1"})
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "idempotency_key_reused"


def test_list_filters_and_paginates(client: FlaskClient, images: Images) -> None:
    ids = [upload(client, images.low).get_json()["id"] for _ in range(3)]
    client.post(f"/api/v1/jobs/{ids[1]}/cancel")
    page = client.get("/api/v1/jobs?limit=2").get_json()
    assert [job["id"] for job in page["jobs"]] == [ids[2], ids[1]]
    assert page["next_cursor"] == ids[1]
    following = client.get(page["links"]["next"]).get_json()
    assert [job["id"] for job in following["jobs"]] == [ids[0]]
    assert following["next_cursor"] is None and following["links"]["next"] is None
    canceled = client.get("/api/v1/jobs?status=canceled").get_json()
    assert [job["id"] for job in canceled["jobs"]] == [ids[1]]
    assert client.get("/api/v1/jobs?status=done").status_code == 400
    assert client.get("/api/v1/jobs?limit=x").status_code == 400


def test_cancel_retry_and_delete(
    client: FlaskClient, db_session: Session, tmp_path: Path, images: Images, enqueued: Recorder
) -> None:
    job_id = upload(client, images.low, reference=images.high).get_json()["id"]
    assert client.post(f"/api/v1/jobs/{job_id}/retry").status_code == 409  # only failed jobs
    canceled = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"
    again = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "invalid_state"

    job = db_session.get(Job, job_id)
    job.status, job.error_code, job.error_message = "failed", "model_error", "boom"
    db_session.commit()
    retried = client.post(f"/api/v1/jobs/{job_id}/retry")
    assert retried.status_code == 202
    assert retried.get_json()["status"] == "queued" and retried.get_json()["error"] is None
    assert enqueued == [job_id, job_id]

    assert len(_stored_files(tmp_path)) == 2
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    assert _stored_files(tmp_path) == []
    assert client.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 404


def _succeed(app: Flask, job_id: int, png: bytes) -> None:
    """Do what the worker does when a job succeeds (the real worker is tested in tests/worker)."""
    storage = app.extensions["lowlight"].storage
    with app.extensions["session_factory"]() as session:
        job = session.get(Job, job_id)
        storage.put_bytes(f"jobs/{job_id}/result.png", png, "image/png")
        job.status, job.result_key = JobStatus.SUCCEEDED.value, f"jobs/{job_id}/result.png"
        job.psnr, job.ssim, job.runtime_ms, job.batch_size, job.model_version = 17.5, 0.71, 850.0, 2, "lite-1"
        session.commit()


def test_result_is_the_png_once_succeeded(app: Flask, client: FlaskClient, images: Images) -> None:
    job_id = upload(client, images.low, filename="My Photo é.png").get_json()["id"]
    pending = client.get(f"/api/v1/jobs/{job_id}/result")
    assert pending.status_code == 409 and pending.get_json()["error"]["code"] == "result_not_available"
    _succeed(app, job_id, images.high)
    job = client.get(f"/api/v1/jobs/{job_id}").get_json()
    assert job["metrics"] == {"psnr": 17.5, "ssim": 0.71, "runtime_ms": 850.0, "batch_size": 2}
    assert job["links"]["result"] == f"/api/v1/jobs/{job_id}/result" and job["links"]["cancel"] is None
    result = client.get(job["links"]["result"])
    assert result.status_code == 200 and result.mimetype == "image/png"
    assert result.data == images.high
    assert result.headers["Content-Disposition"] == 'attachment; filename="My_Photo__-enhanced.png"'
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 204


def test_processing_job_cannot_be_canceled_or_deleted(
    client: FlaskClient, db_session: Session, images: Images
) -> None:
    job_id = upload(client, images.low).get_json()["id"]
    db_session.get(Job, job_id).status = "processing"
    db_session.commit()
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 409


def test_unknown_job_and_route_are_json_404(client: FlaskClient) -> None:
    assert client.get("/api/v1/jobs/999").get_json()["error"]["code"] == "not_found"
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert client.put("/api/v1/jobs").status_code == 405


class TestTokens:
    def test_auth_required_without_token(self, auth_app: Flask, images: Images) -> None:
        client = auth_app.test_client()
        response = upload(client, images.low)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert client.get("/api/v1/jobs", headers=bearer("llt_not-a-token")).status_code == 401
        assert client.get("/api/v1/jobs", headers={"Authorization": "Basic abc"}).status_code == 401

    def test_a_token_sees_only_its_own_jobs(self, auth_app: Flask, tokens: dict, images: Images) -> None:
        client = auth_app.test_client()
        alice, bob, admin = (bearer(tokens[name][1]) for name in ("alice", "bob", "admin"))
        job_id = upload(client, images.low, headers=alice).get_json()["id"]
        assert client.get(f"/api/v1/jobs/{job_id}", headers=alice).status_code == 200
        for path in ("", "/result"):
            assert client.get(f"/api/v1/jobs/{job_id}{path}", headers=bob).status_code == 404
        assert client.post(f"/api/v1/jobs/{job_id}/cancel", headers=bob).status_code == 404
        assert client.delete(f"/api/v1/jobs/{job_id}", headers=bob).status_code == 404
        assert client.get("/api/v1/jobs", headers=bob).get_json()["jobs"] == []
        assert [j["id"] for j in client.get("/api/v1/jobs", headers=admin).get_json()["jobs"]] == [job_id]

    def test_same_idempotency_key_from_two_tokens_is_two_jobs(
        self, auth_app: Flask, tokens: dict, images: Images
    ) -> None:
        client = auth_app.test_client()
        key = {"Idempotency-Key": "same"}
        a = upload(client, images.low, headers={**key, **bearer(tokens["alice"][1])}).get_json()["id"]
        b = upload(client, images.low, headers={**key, **bearer(tokens["bob"][1])}).get_json()["id"]
        assert a != b


def test_no_job_is_lost_when_the_broker_is_down(settings, images: Images) -> None:
    from web.app import create_app
    from web.core.queue import QueueUnavailable

    def broken(_job_id: int) -> None:
        raise QueueUnavailable("broker unreachable")

    client = create_app(settings, enqueue=broken, check_broker=lambda: None).test_client()
    response = upload(client, images.low)
    assert response.status_code == 202  # committed; the scheduler's sweep re-sends queued jobs
    assert client.get(f"/api/v1/jobs/{response.get_json()['id']}").get_json()["status"] == "queued"


def test_a_deleted_jobs_id_is_never_reused(client: FlaskClient, images: Images) -> None:
    first = upload(client, images.low).get_json()["id"]
    assert client.delete(f"/api/v1/jobs/{first}").status_code == 204
    assert upload(client, images.low).get_json()["id"] == first + 1
