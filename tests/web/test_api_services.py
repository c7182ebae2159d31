"""The API on the production stack: PostgreSQL and SeaweedFS, results through presigned URLs."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from tests.web.conftest import Images, Recorder, upload
from web.app import create_app
from web.core.models import Job
from web.core.storage import S3Storage

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_app(
    seaweedfs, s3_bucket: str, pg_migrated: str, pg_sessions: sessionmaker[Session], enqueued: Recorder
) -> Iterator[Flask]:
    settings = seaweedfs.settings(s3_bucket, database_url=pg_migrated, secret_key="x", presign_results=True)
    app = create_app(settings, enqueue=enqueued, check_broker=lambda: None)
    yield app
    app.extensions["session_factory"].kw["bind"].dispose()


def test_upload_to_s3_and_fetch_the_result_by_presigned_url(
    s3_app: Flask, s3_storage: S3Storage, images: Images, enqueued: Recorder
) -> None:
    client = s3_app.test_client()
    created = upload(client, images.low, reference=images.high, filename="../../etc/passwd.png")
    assert created.status_code == 202
    job_id = created.get_json()["id"]
    assert enqueued == [job_id]
    keys = sorted(
        item["Key"] for item in s3_storage.client.list_objects_v2(Bucket=s3_storage.bucket)["Contents"]
    )
    assert keys == [f"jobs/{job_id}/input.png", f"jobs/{job_id}/reference.png"]  # never the user's name

    with s3_app.extensions["session_factory"]() as session:
        job = session.get(Job, job_id)
        s3_storage.put_bytes(f"jobs/{job_id}/result.png", images.high, "image/png")
        job.status, job.result_key = "succeeded", f"jobs/{job_id}/result.png"
        session.commit()
    response = client.get(f"/api/v1/jobs/{job_id}/result")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(s3_storage.client.meta.endpoint_url)
    with urllib.request.urlopen(location, timeout=10) as fetched:  # noqa: S310 - the local SeaweedFS
        assert fetched.read() == images.high
    # The portal serves images through the app, so the browser needs no access to S3.
    assert client.get(f"/jobs/{job_id}/files/result").data == images.high

    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    assert s3_storage.client.list_objects_v2(Bucket=s3_storage.bucket).get("KeyCount") == 0
