"""Issue 3's "done means": real worker processes, the real API, the real brokers and stores.

Each job is submitted through the API with its reference, polled until it succeeds, its result downloaded, and
the PSNR the platform reports recomputed independently with scikit-image on the downloaded file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tests.fixtures.platform import Platform

LOL_SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "lol" / "sample"
if not LOL_SAMPLE.is_dir():
    LOL_SAMPLE = Path("/work/shared/data/lol/sample")
PAIRS = sorted((low, LOL_SAMPLE / "high" / low.name) for low in (LOL_SAMPLE / "low").glob("*.png"))

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def submit_pairs_and_check(platform: Platform) -> dict[int, dict]:
    assert len(PAIRS) == 4, f"expected the 4 LOL sample pairs in {LOL_SAMPLE}"
    ids = {platform.submit(low, reference=high): high for low, high in PAIRS}
    jobs = platform.wait_final(list(ids))
    for job_id, reference_path in ids.items():
        job = jobs[job_id]
        assert job["status"] == "succeeded", job
        assert job["error"] is None and job["note"] is None
        assert 1 <= job["metrics"]["batch_size"] <= platform.settings.max_batch
        assert job["metrics"]["runtime_ms"] > 0
        assert job["model_version"] == "tiny-8"
        assert job["started_at"] and job["completed_at"]

        response = platform.client.get(job["links"]["result"])
        assert response.status_code == 200
        assert response.mimetype == "image/png"
        result = _rgb(response.data)
        reference = np.asarray(Image.open(reference_path).convert("RGB"))
        assert result.shape == reference.shape
        expected_psnr = peak_signal_noise_ratio(reference, result, data_range=255)
        assert job["metrics"]["psnr"] == pytest.approx(expected_psnr, abs=1e-9)
        expected_ssim = structural_similarity(
            reference, result, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=255, channel_axis=-1,
        )  # fmt: skip
        assert job["metrics"]["ssim"] == pytest.approx(expected_ssim, abs=1e-6)
    return jobs


def test_lol_pairs_through_postgres_redis_and_seaweedfs(running_platform: Platform) -> None:
    jobs = submit_pairs_and_check(running_platform)
    # Four uploads arriving within the batch delay run through the model together.
    assert max(job["metrics"]["batch_size"] for job in jobs.values()) > 1
    assert running_platform.settings.storage_backend == "s3"
    assert running_platform.settings.broker_url.startswith("redis://")
    assert running_platform.settings.database_url.startswith("postgresql")


def test_lol_pairs_on_the_embedded_default(embedded_platform: Platform) -> None:
    submit_pairs_and_check(embedded_platform)
    assert embedded_platform.settings.broker_url.startswith("sqla+sqlite")
    assert embedded_platform.settings.database_url.startswith("sqlite")
    assert embedded_platform.settings.storage_backend == "local"
