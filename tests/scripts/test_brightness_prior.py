"""scripts/brightness_prior.py: the shrinkage moves an output's log mean brightness the stated share of the way."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_script():
    spec = importlib.util.spec_from_file_location("brightness_prior", REPO / "scripts" / "brightness_prior.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_shrinking_moves_the_log_brightness_a_share_alpha_of_the_way_to_the_target(alpha: float) -> None:
    script = _load_script()
    image = np.random.default_rng(0).uniform(0.0, 0.2, size=(40, 60, 3)).astype(np.float32)
    target = float(np.log(0.3))
    before = script.log_brightness(image)

    shrunk = script.shrink_brightness(image, alpha, target)

    assert script.log_brightness(shrunk) == pytest.approx(before + alpha * (target - before), abs=1e-5)
    ratio = shrunk / np.maximum(image, 1e-12)
    assert np.allclose(ratio[image > 1e-3], ratio[image > 1e-3].flat[0], rtol=1e-5)  # one gain for every pixel


def test_shrinking_clips_to_the_valid_range() -> None:
    script = _load_script()
    image = np.full((4, 4, 3), 0.9, dtype=np.float32)
    shrunk = script.shrink_brightness(image, 1.0, target=float(np.log(2.0)))
    assert shrunk.max() == 1.0
