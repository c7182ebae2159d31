"""Real workers: an upload with a reference and ``contribute=true`` becomes a training pair once it succeeds
(the enhancement worker hands the job to the ``training`` queue, whose worker stores the pair)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from tests.fixtures.platform import PlatformFactory, start_worker
from tests.retraining.conftest import SAMPLES
from web.core.registry.models import Pair

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _post(platform, name: str, contribute: str) -> int:
    data = {
        "image": ((SAMPLES / "low" / name).open("rb"), name),
        "reference": ((SAMPLES / "high" / name).open("rb"), name),
        "contribute": contribute,
    }
    response = platform.client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_contributed_jobs_become_pairs_on_success(platform_factory: PlatformFactory) -> None:
    platform = platform_factory("embedded", max_batch_delay_ms=0)
    platform.start_worker()
    trainer = start_worker(dataclasses.replace(platform.settings, queue_name="training"), platform.workdir, "trainer")
    platform.workers.append(trainer)
    trainer.wait_ready()

    contributed, private = _post(platform, "2.png", "true"), _post(platform, "5.png", "false")
    platform.wait_for([contributed, private], lambda job: job["status"] == "succeeded")

    deadline = time.monotonic() + 60
    while True:
        with platform.sessions() as session:
            pairs = session.query(Pair).all()
        if pairs or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [(pair.job_id, pair.origin) for pair in pairs] == [(contributed, "job")], trainer.log()[-3000:]
    assert platform.storage.get_bytes(pairs[0].high_key) == (SAMPLES / "high" / "2.png").read_bytes()
