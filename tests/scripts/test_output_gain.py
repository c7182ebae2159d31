"""scripts/output_gain.py: scores as `lowlight eval` does; the leave-one-out fit never uses the image it scores."""

from __future__ import annotations

import numpy as np
import pytest

from mirnet.imageio import to_uint8
from mirnet.metrics import psnr
from tests.scripts.loading import load_script


def test_psnr_with_each_gain_is_the_8_bit_psnr_of_the_scaled_and_clipped_output() -> None:
    script = load_script("output_gain")
    rng = np.random.default_rng(0)
    enhanced = rng.uniform(0.0, 1.0, size=(30, 40, 3)).astype(np.float32)
    reference = to_uint8(np.clip(enhanced * 0.95 + rng.normal(0, 0.02, enhanced.shape), 0, 1))
    grid = np.array([0.9, 0.95, 1.0, 1.1])

    values = script.psnr_with_gains(enhanced, reference, grid)

    expected = [psnr(to_uint8(np.clip(enhanced * gain, 0.0, 1.0)), reference) for gain in grid]
    assert values == pytest.approx(expected, abs=1e-9)
    assert int(np.argmax(values)) == 1  # the reference is the output darkened by 0.95


def test_each_image_is_scored_with_the_gain_fitted_on_the_others() -> None:
    script = load_script("output_gain")
    grid = np.array([0.9, 1.0, 1.1])
    # Three images prefer 0.9; the fourth prefers 1.1 so strongly that it moves the fit over all four.
    psnr = np.array([[21.0, 20.0, 19.0], [21.0, 20.0, 19.0], [21.0, 20.0, 19.0], [10.0, 20.0, 30.0]])

    fit = script.fit_gains(psnr, grid)

    assert fit.fitted == pytest.approx(1.1)  # column means 18.25, 20, 21.75
    assert fit.left_out[3] == pytest.approx(0.9)  # the other three alone prefer 0.9 ...
    assert fit.left_out_psnr[3] == pytest.approx(10.0)  # ... and it is scored with their choice, not its own
    assert list(fit.left_out[:3]) == pytest.approx([1.1, 1.1, 1.1])  # two at 0.9 and the fourth: means 17.3, 20, 22.3
    assert list(fit.left_out_psnr[:3]) == pytest.approx([19.0, 19.0, 19.0])


def test_a_tie_goes_to_the_gain_nearest_one() -> None:
    script = load_script("output_gain")
    grid = np.array([0.9, 1.0, 1.1])
    fit = script.fit_gains(np.full((3, 3), 20.0), grid)
    assert fit.fitted == 1.0
    assert list(fit.left_out) == [1.0, 1.0, 1.0]


def test_fitting_needs_two_images_and_a_column_per_gain() -> None:
    script = load_script("output_gain")
    with pytest.raises(ValueError, match="at least two images"):
        script.fit_gains(np.zeros((1, 3)), np.array([0.9, 1.0, 1.1]))
    with pytest.raises(ValueError, match="at least two images"):
        script.fit_gains(np.zeros((4, 2)), np.array([0.9, 1.0, 1.1]))
