"""A real worker switches to a newly promoted version between batches, without a restart and with no job
failing, loading it once; every job records the version that enhanced it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fixtures.platform import PlatformFactory, write_tiny_model
from tests.worker.conftest import png_bytes
from web.core.models import Job
from web.core.registry import services as registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_worker_switches_versions_mid_stream(platform_factory: PlatformFactory, tmp_path: Path) -> None:
    platform = platform_factory("embedded", max_batch=2, max_batch_delay_ms=0)
    worker = platform.start_worker()
    images = []
    for index in range(12):
        path = tmp_path / f"dark{index}.png"
        path.write_bytes(png_bytes(48, 32, seed=index))
        images.append(path)

    before = [platform.submit(path) for path in images[:6]]
    platform.wait_for(before[:2], lambda job: job["status"] == "succeeded")
    new_weights = write_tiny_model(tmp_path / "next.keras", channels=6)
    with platform.sessions() as session:
        candidate = registry.register_version(
            session,
            platform.storage,
            new_weights.read_bytes(),
            json.loads(new_weights.with_suffix(".json").read_text()),
            name="v2",
        )
        registry.promote(session, candidate.version)  # what POST /api/v1/models/<version>/promote does
    after = [platform.submit(path) for path in images[6:]]
    time.sleep(0.5)
    after.append(platform.submit(images[0]))

    jobs = platform.wait_final(before + after)

    assert all(job["status"] == "succeeded" for job in jobs.values()), jobs
    with platform.sessions() as session:
        rows = session.query(Job).order_by(Job.completed_at, Job.id).all()
        versions = [row.model_version for row in rows]
    first = versions[0]
    assert first == "tiny-8" and versions[-1] == candidate.version
    switch = versions.index(candidate.version)
    assert set(versions[:switch]) == {first} and set(versions[switch:]) == {candidate.version}
    assert jobs[after[-1]]["model_version"] == candidate.version
    assert worker.log().count(f"switched to model {candidate.version}") == 1
