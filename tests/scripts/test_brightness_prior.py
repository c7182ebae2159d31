"""scripts/brightness_prior.py: the shrinkage moves an output's log mean brightness the stated share of the way."""

from __future__ import annotations

import numpy as np
import pytest

from tests.scripts.loading import load_script


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_shrinking_moves_the_log_brightness_a_share_alpha_of_the_way_to_the_target(alpha: float) -> None:
    script = load_script("brightness_prior")
    image = np.random.default_rng(0).uniform(0.0, 0.2, size=(40, 60, 3)).astype(np.float32)
    target = float(np.log(0.3))
    before = script.log_brightness(image)

    shrunk = script.shrink_brightness(image, alpha, target)

    assert script.log_brightness(shrunk) == pytest.approx(before + alpha * (target - before), abs=1e-5)
    ratio = shrunk / np.maximum(image, 1e-12)
    assert np.allclose(ratio[image > 1e-3], ratio[image > 1e-3].flat[0], rtol=1e-5)  # one gain for every pixel


def test_shrinking_clips_to_the_valid_range() -> None:
    script = load_script("brightness_prior")
    image = np.full((4, 4, 3), 0.9, dtype=np.float32)
    shrunk = script.shrink_brightness(image, 1.0, target=float(np.log(2.0)))
    assert shrunk.max() == 1.0
