"""The compose topology as processes (scripts/topology.py) with a smaller load: 4 workers, SIGKILL, Redis restart.

Needs PostgreSQL on 127.0.0.1:5432, the `redis-server` and `weed` binaries; about a minute on two cores.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "topology.py"


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary")
def test_forty_jobs_survive_a_killed_worker_and_a_redis_restart_exactly_once() -> None:
    # The script kills a worker whose log shows a claimed batch that the job table still holds as processing.
    # Images of 384 px keep a batch inside the model long enough for the kill to land while it is.
    command = [sys.executable, str(SCRIPT), "--jobs", "40", "--bench-jobs", "8", "--side", "384", "--sample", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=SCRIPT.parents[1])
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert re.search(r"SIGKILLed w\d \(pid \d+\) in the middle of a batch", output)
    assert "restarted redis-server" in output
    retaken = re.search(r"taken over after the kill \(attempts 2\): (\d+) jobs", output)
    assert retaken and 1 <= int(retaken[1]) <= 4, output
    rates = [float(rate) for rate in re.findall(r"^  [124] workers?\s+([\d.]+) jobs/s", output, re.MULTILINE)]
    assert len(rates) == 3 and all(rate > 0 for rate in rates), output
    assert "OK: all 40 jobs succeeded exactly once" in output
