"""A 24-megapixel photo enhances in bounded memory (tiles), measured on a real child process."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

LIMIT_BYTES = 4 * 2**30


@pytest.mark.slow
def test_24_megapixel_photo_enhances_under_4_gb(tmp_path, lol_sample):
    source = tmp_path / "24mp.png"
    Image.open(lol_sample / "low" / "9.png").convert("RGB").resize((6000, 4000)).save(source, compress_level=1)
    out = tmp_path / "out"
    # The packaged default model with the CLI's defaults (1024-px tiles), as a user would run it; a fresh
    # interpreter so that RUSAGE_CHILDREN is the enhancing process alone.
    probe = (
        "import resource, subprocess, sys; "
        "subprocess.run([sys.executable, '-m', 'mirnet.cli', 'enhance', sys.argv[1], '-o', sys.argv[2]], "
        "check=True, capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(source), str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    peak_bytes = int(result.stdout.strip()) * 1024
    assert peak_bytes < LIMIT_BYTES, f"peak RSS {peak_bytes / 2**20:.0f} MB"
    enhanced = np.asarray(Image.open(out / "24mp.png"))
    assert enhanced.shape == (4000, 6000, 3)
    assert enhanced.mean() > np.asarray(Image.open(source)).mean()  # it got brighter
