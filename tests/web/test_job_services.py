"""Job service functions against real PostgreSQL and SeaweedFS: what is stored, what is committed, when the
job is enqueued, and that nothing at all is stored for a rejected upload."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.web.conftest import Images, Recorder
from web.core import jobs as job_service
from web.core.errors import IdempotencyConflict, InvalidJobState, JobNotFound, UploadRejected
from web.core.jobs import Upload
from web.core.models import Job, JobStatus
from web.core.settings import Settings
from web.core.storage import S3Storage, StorageUnavailable
from web.core.tokens import authenticate, create_token

pytestmark = pytest.mark.integration

LIMITS = {"max_upload_bytes": 2 * 2**20, "max_pixels": 4_000_000}


@pytest.fixture
def settings(seaweedfs, s3_bucket: str, pg_migrated: str) -> Settings:
    return seaweedfs.settings(s3_bucket, database_url=pg_migrated, **LIMITS)


def _objects(storage: S3Storage) -> list[str]:
    listing = storage.client.list_objects_v2(Bucket=storage.bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def _count_jobs(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_create_stores_objects_commits_then_enqueues(
    pg_sessions: sessionmaker[Session], s3_storage: S3Storage, settings: Settings, images: Images
) -> None:
    seen_from_another_session: list[str] = []

    def enqueue(job_id: int) -> None:
        # The worker reads the row from its own connection: it must already be committed.
        with pg_sessions() as other:
            seen_from_another_session.append(other.get(Job, job_id).status)

    with pg_sessions() as session:
        job = job_service.create_job(
            session,
            s3_storage,
            settings,
            None,
            image=Upload(images.low, "my holiday.png", "image/png"),
            reference=Upload(images.high, "ref.png", "image/png"),
            contribute=True,
            enqueue=enqueue,
        )
    assert seen_from_another_session == ["queued"]
    assert job.input_key == f"jobs/{job.id}/input.png"
    assert job.reference_key == f"jobs/{job.id}/reference.png"
    assert sorted(_objects(s3_storage)) == sorted([job.input_key, job.reference_key])
    assert s3_storage.get_bytes(job.input_key) == images.low
    assert (job.width, job.height, job.contribute, job.note) == (600, 400, True, None)
    assert job.original_filename == "my holiday.png"


BAD_UPLOADS = {
    "zero bytes": (b"", None, "image/png", False, "empty"),
    "not an image": (b"hello, I am text", None, "image/png", False, "not_an_image"),
    "wrong content type": ("LOW", None, "text/plain", False, "unsupported_media_type"),
    "truncated": ("LOW[:5000]", None, "image/png", False, "truncated"),
    "bomb": ("BOMB", None, "image/png", False, "decompression_bomb"),
    "too large": ("HUGE", None, "image/png", False, "too_large"),
    "contribute without reference": ("LOW", None, "image/png", True, "reference_required"),
    "broken reference": ("LOW", "HIGH[:3000]", "image/png", False, "truncated"),
}


def _materialize(value: object, images: Images) -> bytes | None:
    if value == "LOW":
        return images.low
    if value == "LOW[:5000]":
        return images.low[:5000]
    if value == "HIGH[:3000]":
        return images.high[:3000]
    if value == "BOMB":
        return Images.bomb()
    if value == "HUGE":
        return images.low + b"\0" * (3 * 2**20)
    return value  # type: ignore[return-value]


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_rejected_upload_stores_nothing(
    case: str,
    pg_sessions: sessionmaker[Session],
    s3_storage: S3Storage,
    settings: Settings,
    images: Images,
    enqueued: Recorder,
) -> None:
    image, reference, content_type, contribute, code = BAD_UPLOADS[case]
    reference_bytes = _materialize(reference, images)
    with pg_sessions() as session, pytest.raises(UploadRejected) as raised:
        job_service.create_job(
            session,
            s3_storage,
            settings,
            None,
            image=Upload(_materialize(image, images) or b"", "x.png", content_type),
            reference=Upload(reference_bytes, "r.png", "image/png") if reference_bytes else None,
            contribute=contribute,
            enqueue=enqueued,
        )
    assert raised.value.code == code
    assert "\n" not in raised.value.message
    assert _objects(s3_storage) == []
    assert _count_jobs(pg_sessions) == 0
    assert enqueued == []


def test_reference_of_another_size_is_a_note_not_a_rejection(
    pg_sessions: sessionmaker[Session], s3_storage: S3Storage, settings: Settings, images: Images
) -> None:
    with pg_sessions() as session:
        job = job_service.create_job(
            session,
            s3_storage,
            settings,
            None,
            image=Upload(images.low, "a.png", "image/png"),
            reference=Upload(Images.png(300, 200), "small.png", "image/png"),
        )
    assert job.status == "queued"
    assert "300x200" in job.note and "600x400" in job.note


def test_idempotency_key_returns_the_first_job(
    pg_sessions: sessionmaker[Session], s3_storage: S3Storage, settings: Settings, images: Images
) -> None:
    enqueued = Recorder()
    with pg_sessions() as session:
        token, _ = create_token(session, "script")
        first = job_service.create_job(
            session, s3_storage, settings, token, Upload(images.low), idempotency_key="k1", enqueue=enqueued
        )
        again = job_service.create_job(
            session, s3_storage, settings, token, Upload(images.low), idempotency_key="k1", enqueue=enqueued
        )
        assert again.id == first.id
        with pytest.raises(IdempotencyConflict):
            job_service.create_job(
                session, s3_storage, settings, token, Upload(images.other_low), idempotency_key="k1"
            )
        # The same key from another caller is a different upload.
        anonymous = job_service.create_job(
            session, s3_storage, settings, None, Upload(images.low), idempotency_key="k1", enqueue=enqueued
        )
        assert anonymous.id != first.id
    assert enqueued == [first.id, anonymous.id]
    assert len(_objects(s3_storage)) == 2


def test_storage_down_leaves_no_row(
    pg_sessions: sessionmaker[Session], settings: Settings, images: Images, enqueued: Recorder
) -> None:
    class DownStorage:
        def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
            raise StorageUnavailable("down")

        def delete(self, key: str) -> None:
            raise StorageUnavailable("down")

    with pg_sessions() as session, pytest.raises(StorageUnavailable):
        job_service.create_job(session, DownStorage(), settings, None, Upload(images.low), enqueue=enqueued)  # type: ignore[arg-type]
    assert _count_jobs(pg_sessions) == 0
    assert enqueued == []


def _make_job(
    factory: sessionmaker[Session], storage: S3Storage, settings: Settings, images: Images, token=None
) -> int:
    with factory() as session:
        return job_service.create_job(session, storage, settings, token, Upload(images.low, "a.png")).id


def test_cancel_only_a_queued_job(
    pg_sessions: sessionmaker[Session], s3_storage: S3Storage, settings: Settings, images: Images
) -> None:
    job_id = _make_job(pg_sessions, s3_storage, settings, images)
    with pg_sessions() as session:
        job = job_service.cancel_job(session, None, job_id)
        assert job.status == "canceled" and job.completed_at is not None
        with pytest.raises(InvalidJobState):
            job_service.cancel_job(session, None, job_id)


def test_retry_a_failed_job_requeues_it(
    pg_sessions: sessionmaker[Session], s3_storage: S3Storage, settings: Settings, images: Images
) -> None:
    job_id = _make_job(pg_sessions, s3_storage, settings, images)
    enqueued = Recorder()
    with pg_sessions() as session:
        with pytest.raises(InvalidJobState):
            job_service.retry_job(session, None, job_id, enqueue=enqueued)
        job = session.get(Job, job_id)
        job.status, job.error_code, job.error_message = "failed", "storage_unavailable", "gave up"
        session.commit()
        job = job_service.retry_job(session, None, job_id, enqueue=enqueued)
        assert (job.status, job.error_code, job.error_message) == ("queued", None, None)
    assert enqueued == [job_id]


def test_delete_removes_objects_and_row(
    pg_sessions: sessionmaker[Session], s3_storage: S3Storage, settings: Settings, images: Images
) -> None:
    job_id = _make_job(pg_sessions, s3_storage, settings, images)
    with pg_sessions() as session:
        job = session.get(Job, job_id)
        s3_storage.put_bytes(f"jobs/{job_id}/result.png", b"png", "image/png")
        job.status, job.result_key = JobStatus.SUCCEEDED.value, f"jobs/{job_id}/result.png"
        session.commit()
        job_service.delete_job(session, s3_storage, None, job_id)
        with pytest.raises(JobNotFound):
            job_service.get_job(session, None, job_id)
    assert _objects(s3_storage) == []


def test_tokens_see_only_their_own_jobs(
    pg_sessions: sessionmaker[Session], s3_storage: S3Storage, settings: Settings, images: Images
) -> None:
    with pg_sessions() as session:
        alice, alice_plain = create_token(session, "alice")
        bob, _ = create_token(session, "bob")
        admin, _ = create_token(session, "ops", is_admin=True)
        job = job_service.create_job(session, s3_storage, settings, alice, Upload(images.low))
        assert authenticate(session, alice_plain).id == alice.id
        assert authenticate(session, "llt_wrong") is None
        assert job_service.get_job(session, alice, job.id).id == job.id
        assert job_service.get_job(session, admin, job.id).id == job.id
        for other in (bob, None):
            with pytest.raises(JobNotFound):
                job_service.get_job(session, other, job.id)
            with pytest.raises(JobNotFound):
                job_service.cancel_job(session, other, job.id)
            assert job_service.list_jobs(session, other)[0] == []


def test_list_filters_by_status_and_pages(
    pg_sessions: sessionmaker[Session], s3_storage: S3Storage, settings: Settings, images: Images
) -> None:
    ids = [_make_job(pg_sessions, s3_storage, settings, images) for _ in range(5)]
    with pg_sessions() as session:
        job_service.cancel_job(session, None, ids[0])
        page, cursor = job_service.list_jobs(session, None, limit=2)
        assert [job.id for job in page] == [ids[4], ids[3]] and cursor == ids[3]
        page, cursor = job_service.list_jobs(session, None, limit=2, before_id=cursor)
        assert [job.id for job in page] == [ids[2], ids[1]]
        page, cursor = job_service.list_jobs(session, None, limit=2, before_id=cursor)
        assert [job.id for job in page] == [ids[0]] and cursor is None
        canceled, _ = job_service.list_jobs(session, None, status=JobStatus.CANCELED)
        assert [job.id for job in canceled] == [ids[0]]
