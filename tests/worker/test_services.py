"""The enhancement service called directly: batches, metrics, notes, bad input, idempotency, outages."""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tests.worker.conftest import MakeJob, load_job, png_bytes
from web.core.storage import ObjectStorage, StorageUnavailable
from worker import services
from worker.context import WorkerContext

pytestmark = pytest.mark.integration


def _rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_queued_jobs_run_as_one_batch_with_metrics(ctx: WorkerContext, make_job: MakeJob) -> None:
    references = [png_bytes(seed=10 + i) for i in range(3)]
    ids = [make_job(png_bytes(seed=i), reference=references[i]) for i in range(3)]
    report = services.enhance_batch(ctx, ids[1])
    assert sorted(report.claimed) == sorted(ids) and sorted(report.succeeded) == sorted(ids)
    for job_id, reference in zip(ids, references, strict=True):
        job = load_job(ctx, job_id)
        assert (job.status, job.batch_size, job.attempts) == ("succeeded", 3, 1)
        assert job.model_version == "tiny-8" and job.runtime_ms > 0
        assert job.started_at is not None and job.completed_at >= job.started_at
        result = _rgb(ctx.storage.get_bytes(job.result_key))
        assert result.shape == (32, 48, 3)
        assert job.psnr == pytest.approx(peak_signal_noise_ratio(_rgb(reference), result, data_range=255))
        expected_ssim = structural_similarity(
            _rgb(reference), result, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=255, channel_axis=-1,
        )  # fmt: skip
        assert job.ssim == pytest.approx(expected_ssim, abs=1e-6) and job.note is None


def test_a_job_without_reference_has_no_metrics(ctx: WorkerContext, make_job: MakeJob) -> None:
    job_id = make_job()
    services.enhance_batch(ctx, job_id)
    job = load_job(ctx, job_id)
    assert job.status == "succeeded" and job.psnr is None and job.ssim is None and job.note is None


def test_a_reference_of_another_size_is_a_note_not_a_failure(ctx: WorkerContext, make_job: MakeJob) -> None:
    job_id = make_job(reference=png_bytes(width=40, height=30))
    services.enhance_batch(ctx, job_id)
    job = load_job(ctx, job_id)
    assert job.status == "succeeded" and job.psnr is None and job.ssim is None
    assert job.note == "the reference is 40x30 but the image is 48x32; PSNR/SSIM not computed"
    assert ctx.storage.exists(job.result_key)


def test_a_bad_image_fails_only_its_own_job(ctx: WorkerContext, make_job: MakeJob) -> None:
    good = make_job()
    bad = make_job(b"this is not an image")
    missing = make_job()
    ctx.storage.delete(load_job(ctx, missing).input_key)
    report = services.enhance_batch(ctx, bad)
    assert sorted(report.failed) == sorted([bad, missing]) and report.succeeded == [good]
    failed = load_job(ctx, bad)
    assert failed.status == "failed" and failed.error_code == "not_an_image" and failed.batch_size is None
    assert load_job(ctx, missing).error_code == "input_missing"
    assert load_job(ctx, good).batch_size == 1, "only the decodable image ran through the model"


def test_messages_for_final_or_taken_jobs_are_no_ops(ctx: WorkerContext, make_job: MakeJob) -> None:
    first, second = make_job(), make_job()
    services.enhance_batch(ctx, first)  # takes ``second`` into the same batch
    before = load_job(ctx, second)
    for job_id in (first, second):
        report = services.enhance_batch(ctx, job_id)
        assert report.claimed == [] and report.succeeded == []
    after = load_job(ctx, second)
    assert (after.status, after.attempts, after.completed_at) == ("succeeded", 1, before.completed_at)


@dataclass
class FlakyStorage:
    """Delegates to a real storage, but the chosen operations raise StorageUnavailable."""

    inner: ObjectStorage
    down: frozenset[str] = frozenset({"get_bytes"})

    def __getattr__(self, name: str):  # noqa: ANN204
        if name in self.down:

            def unavailable(*args: object, **kwargs: object) -> None:
                raise StorageUnavailable("S3 endpoint unreachable: connection refused")

            return unavailable
        return getattr(self.inner, name)


def test_storage_outage_releases_the_batch_with_backoff_then_fails(ctx: WorkerContext, make_job: MakeJob) -> None:
    ids = [make_job(), make_job()]
    down = replace(ctx, storage=FlakyStorage(ctx.storage))
    first = services.enhance_batch(down, ids[0])
    assert first.released == {ids[0]: 0.5, ids[1]: 0.5}
    assert [load_job(ctx, i).status for i in ids] == ["queued", "queued"]
    assert "storage unavailable" in load_job(ctx, ids[0]).note
    second = services.enhance_batch(down, ids[0])
    assert second.released == {ids[0]: 1.0, ids[1]: 1.0}, "the wait doubles"
    third = services.enhance_batch(down, ids[0])  # attempt 3 = storage_retry_attempts + 1: give up
    assert third.released == {} and sorted(third.failed) == sorted(ids)
    for job_id in ids:
        job = load_job(ctx, job_id)
        assert (job.status, job.error_code, job.attempts) == ("failed", "storage_unavailable", 3)
        assert "object storage unavailable after 3 attempts" in job.error_message
        assert ctx.storage.exists(job.input_key), "the input is kept"


def test_storage_outage_while_writing_results_finishes_nothing(ctx: WorkerContext, make_job: MakeJob) -> None:
    job_id = make_job()
    down = replace(ctx, storage=FlakyStorage(ctx.storage, down=frozenset({"put_bytes"})))
    report = services.enhance_batch(down, job_id)
    assert report.released == {job_id: 0.5} and report.succeeded == []
    assert load_job(ctx, job_id).status == "queued"
    services.enhance_batch(ctx, job_id)
    job = load_job(ctx, job_id)
    assert (job.status, job.attempts) == ("succeeded", 2)


def test_an_unexpected_error_fails_the_batch_and_is_raised(ctx: WorkerContext, make_job: MakeJob) -> None:
    class BrokenEnhancer:
        def enhance_many(self, images: list) -> list:
            raise RuntimeError("out of memory")

    job_id = make_job()
    with pytest.raises(RuntimeError, match="out of memory"):
        services.enhance_batch(replace(ctx, enhancer_override=BrokenEnhancer()), job_id)
    job = load_job(ctx, job_id)
    assert (job.status, job.error_code) == ("failed", "internal_error")
    assert job.error_message == "RuntimeError: out of memory"


def test_the_soft_time_limit_fails_the_batch_with_a_clear_reason(ctx: WorkerContext, make_job: MakeJob) -> None:
    class StuckEnhancer:
        def enhance_many(self, images: list) -> list:
            raise SoftTimeLimitExceeded()

    ids = [make_job(), make_job()]
    report = services.enhance_batch(replace(ctx, enhancer_override=StuckEnhancer()), ids[0])
    assert sorted(report.failed) == ids
    for job_id in ids:
        job = load_job(ctx, job_id)
        assert (job.status, job.error_code) == ("failed", "timeout")
        assert job.error_message == f"enhancement took longer than {ctx.settings.task_soft_time_limit} s"
