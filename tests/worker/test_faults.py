"""Faults with real worker processes: SIGKILL mid-batch, storage down, a model that cannot load."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.fixtures.platform import PlatformFactory, write_tiny_model
from tests.fixtures.services import free_port
from tests.worker.test_end_to_end import PAIRS
from web.core.models import Job

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="session")
def slow_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Big enough that a batch of the four LOL images takes seconds on two cores: time to kill it."""
    path = tmp_path_factory.mktemp("models") / "slow.keras"
    return write_tiny_model(path, channels=16, groups=2, blocks=2)


def test_sigkill_mid_batch_every_job_still_completes_exactly_once(
    platform_factory: PlatformFactory, slow_model_path: Path
) -> None:
    platform = platform_factory(
        "services",
        model=str(slow_model_path),
        max_batch_delay_ms=3000,
        task_soft_time_limit=15,
        task_time_limit=18,
    )
    doomed = platform.start_worker("doomed")
    ids = [platform.submit(low, reference=high) for low, high in PAIRS]
    platform.wait_for(ids, lambda job: job["status"] == "processing", timeout=30)
    time.sleep(0.5)  # the batch is full, so the worker is now decoding and running the model
    doomed.kill()
    assert [platform.job(i)["status"] for i in ids] == ["processing"] * 4, "the kill came too late"

    rescuer = platform.start_worker("rescuer", beat=True)
    jobs = platform.wait_final(ids, timeout=120)

    assert {job["status"] for job in jobs.values()} == {"succeeded"}
    assert all(job["attempts"] == 2 for job in jobs.values()), "claimed once by each worker"
    for job_id in ids:
        finished = re.compile(rf"job {job_id} (succeeded|failed)\b")
        assert not finished.search(doomed.log())
        assert len(finished.findall(rescuer.log())) == 1, "exactly one final write per job"
        assert platform.client.get(f"/api/v1/jobs/{job_id}/result").status_code == 200
    assert "requeued" in rescuer.log()


def test_sigkill_of_the_pool_process_mid_batch_every_job_still_completes_exactly_once(
    platform_factory: PlatformFactory, slow_model_path: Path
) -> None:
    """The worker survives its pool process: the message comes back (reject on worker lost), leases expire."""
    platform = platform_factory(
        "services", model=str(slow_model_path), max_batch_delay_ms=3000, task_soft_time_limit=15, task_time_limit=18
    )
    worker = platform.start_worker("survivor", beat=True)
    (child_pid,) = map(int, re.findall(r"loaded model .* in pid (\d+)", worker.log()))
    ids = [platform.submit(low, reference=high) for low, high in PAIRS]
    platform.wait_for(ids, lambda job: job["status"] == "processing", timeout=30)
    time.sleep(0.5)
    os.kill(child_pid, signal.SIGKILL)

    jobs = platform.wait_final(ids, timeout=120)
    assert {job["status"] for job in jobs.values()} == {"succeeded"}
    assert all(job["attempts"] == 2 for job in jobs.values())
    log = worker.log()
    assert f"pid:{child_pid} exited with 'signal 9 (SIGKILL)'" in log
    assert "WorkerLostError" in log
    # The message of the task that was running came back (reject on worker lost) and was delivered again.
    received = re.findall(r"Task worker\.enhance_job\[([-0-9a-f]+)\] received", log)
    assert received.count(received[0]) >= 2
    for job_id in ids:
        assert len(re.findall(rf"job {job_id} succeeded\b", log)) == 1, "exactly one final write per job"


def test_storage_down_retries_with_backoff_then_fails_and_keeps_the_input(
    platform_factory: PlatformFactory,
) -> None:
    platform = platform_factory("services", storage_retry_attempts=2, storage_retry_backoff_s=0.5)
    dead_endpoint = f"http://127.0.0.1:{free_port()}"
    worker = platform.start_worker(extra_env={"S3_ENDPOINT_URL": dead_endpoint, "S3_CONNECT_TIMEOUT": "1"})
    low, high = PAIRS[0]
    job_id = platform.submit(low, reference=high)
    job = platform.wait_final([job_id], timeout=60)[job_id]

    assert job["status"] == "failed" and job["attempts"] == 3
    assert job["error"]["code"] == "storage_unavailable"
    assert job["error"]["message"].startswith("object storage unavailable after 3 attempts: S3 endpoint unreachable")
    retries = re.findall(r"Retry in (\d+(?:\.\d+)?)s", worker.log())
    assert [float(s) for s in retries] == [0.5, 1.0], "exponential backoff between attempts"
    with platform.sessions() as session:
        input_key = session.scalars(select(Job.input_key).where(Job.id == job_id)).one()
    assert platform.storage.exists(input_key), "the input is kept for a later retry"


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_a_model_that_cannot_load_stops_the_worker_loudly(
    platform_factory: PlatformFactory, tmp_path: Path, pool: str
) -> None:
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a keras file")
    broken.with_suffix(".json").write_text('{"architecture": "mirnet-lite", "arguments": {}}')
    platform = platform_factory("embedded", model=str(broken))
    worker = platform.start_worker(ready=False, pool=pool)
    returncode = worker.process.wait(timeout=90)
    assert returncode == 3
    assert re.search(r"CRITICAL.*worker cannot start: model '.*broken.keras' cannot be loaded", worker.log())
