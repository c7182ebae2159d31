"""scripts/bench_platform.py: it runs end to end on tiny inputs, and its phases add up to the run's time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.platform import REPO_ROOT
from tests.scripts.loading import load_script
from tests.web.test_submit import write_png


def test_phases_add_up_to_the_wall_time_and_overlaps_count_once() -> None:
    bench = load_script("bench_platform")
    rows = [  # two batches of one worker, then a second worker overlapping the second batch
        {"created": 100.5, "started": 101.0, "completed": 103.0, "batch_size": 2},
        {"created": 100.6, "started": 101.0, "completed": 103.0, "batch_size": 2},
        {"created": 100.7, "started": 104.0, "completed": 106.0, "batch_size": 1},
        {"created": 100.8, "started": 105.0, "completed": 107.0, "batch_size": 1},
    ]
    phases = bench.phases_of(rows, began=100.0, ended=107.5)
    assert phases["before first claim"] == 1.0
    assert phases["workers busy"] == 5.0  # 101-103 and 104-107
    assert phases["no worker busy"] == 1.0
    assert phases["after last completion"] == 0.5
    assert sum(phases[name] for name in bench.PHASES_OF_WALL) == pytest.approx(7.5)
    assert phases["mean queue wait"] == pytest.approx((0.5 + 0.4 + 3.3 + 4.2) / 4)
    assert phases["mean batch"] == 1.5


@pytest.mark.integration
@pytest.mark.slow
def test_bench_platform_runs_both_paths_on_tiny_images(tiny_model_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "set" / "low"
    for seed in range(2):
        write_png(folder / f"{seed}.png", seed)
    command = [sys.executable, "scripts/bench_platform.py", "--images", "2", "--model", str(tiny_model_path)]
    done = subprocess.run(
        [*command, "--folder", str(folder), "--workers", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    bare = re.search(r"\(a\) bare Enhancer, model only\s+([\d.]+) images/s", done.stdout)
    platform = re.search(r"\(b\) platform, 1 worker\(s\)\s+([\d.]+) images/s", done.stdout)
    assert bare and platform, done.stdout
    assert float(bare[1]) > 0 and float(platform[1]) > 0
    assert "overhead over the model's own time" in done.stdout and "mean batch" in done.stdout
