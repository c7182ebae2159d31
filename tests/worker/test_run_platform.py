"""``scripts/run_platform.py`` (``make run``): the embedded default as real processes, over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures.platform import REPO_ROOT
from tests.fixtures.services import free_port
from tests.worker.test_end_to_end import PAIRS

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"run_platform exited with {process.returncode}"
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


def test_run_platform_serves_enhances_and_stops_cleanly(tiny_model_path: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
        "PORT": str(port),
        "MODEL": str(tiny_model_path),
        "WEB_WORKERS": "1",
    }
    log_path = tmp_path / "platform.log"
    script = [sys.executable, str(REPO_ROOT / "scripts" / "run_platform.py")]
    with log_path.open("wb") as log:
        process = subprocess.Popen(script, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _enhance_one_job(base, process)
    except Exception as exc:
        _stop(process)
        raise AssertionError(f"{exc}\n--- platform log ---\n{log_path.read_text(errors='replace')[-6000:]}") from exc
    returncode = _stop(process)
    output = log_path.read_text(errors="replace")
    assert returncode == 0, output[-4000:]
    assert "kombu SQLAlchemy transport" in output
    assert (tmp_path / "var" / "lowlight.db").is_file() and (tmp_path / "var" / "broker.db").is_file()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the web server stopped with the script"


def _enhance_one_job(base: str, process: subprocess.Popen[bytes]) -> None:
    _wait_for_http(f"{base}/healthz", process)
    low, high = PAIRS[0]
    with low.open("rb") as image, high.open("rb") as reference:
        response = requests.post(f"{base}/api/v1/jobs", files={"image": image, "reference": reference}, timeout=30)
    assert response.status_code == 202, response.text
    job_url = f"{base}/api/v1/jobs/{response.json()['id']}"
    deadline = time.monotonic() + 120
    while (job := requests.get(job_url, timeout=10).json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
    assert job["metrics"]["psnr"] is not None
    assert requests.get(base + job["links"]["result"], timeout=10).headers["Content-Type"] == "image/png"


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)
