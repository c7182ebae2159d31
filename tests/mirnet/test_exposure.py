"""The exposure sweep's arithmetic, on tiny images and without a network."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mirnet.exposure import (
    SensorNoise,
    darken,
    linear_to_srgb,
    newly_clipped,
    srgb_to_linear,
    stops,
    summarise,
    sweep,
)


def _gradient(height: int = 8, width: int = 16) -> np.ndarray:
    values = np.linspace(0, 255, height * width * 3).reshape(height, width, 3)
    return np.rint(values).astype(np.uint8)


def test_srgb_round_trip_is_exact_at_8_bits():
    levels = np.arange(256, dtype=np.float64) / 255.0
    back = np.rint(linear_to_srgb(srgb_to_linear(levels)) * 255.0)
    assert np.array_equal(back, np.arange(256))


def test_a_factor_of_one_is_the_reference_exactly():
    reference = _gradient()
    assert np.array_equal(darken(reference, 1.0), reference)


@pytest.mark.parametrize("factor", [0.5, 0.25, 0.125])
def test_darker_steps_have_that_share_of_the_light(factor):
    reference = np.full((4, 4, 3), 200, dtype=np.uint8)
    dark = darken(reference, factor)
    ratio = srgb_to_linear(dark / 255.0).mean() / srgb_to_linear(reference / 255.0).mean()
    assert ratio == pytest.approx(factor, rel=0.02)  # 8-bit rounding of the encoded value
    assert dark.mean() < reference.mean()


def test_noise_grows_as_light_falls():
    reference = np.full((64, 64, 3), 180, dtype=np.uint8)
    noise = SensorNoise(photons_at_white=500.0, read_noise=2.0)
    relative = []
    for factor in (0.5, 0.125):
        dark = darken(reference, factor, noise, np.random.default_rng(1))
        light = srgb_to_linear(dark / 255.0)
        relative.append(light.std() / light.mean())
    assert relative[1] > 1.5 * relative[0]


def test_a_known_factor_gives_the_known_psnr():
    """An enhancer that changes nothing scores the darkened image itself: PSNR from the encoded values by hand."""
    reference = np.full((12, 12, 3), 160, dtype=np.uint8)
    dark_value = round(float(linear_to_srgb(srgb_to_linear(160 / 255) * 0.5)) * 255)
    expected = 10 * math.log10(255**2 / (160 - dark_value) ** 2)
    scores = sweep([("grey", reference)], lambda image: image, factors=(1.0, 0.5))
    assert [s.factor for s in scores] == [1.0, 0.5]
    assert scores[0].psnr == math.inf and scores[0].newly_clipped == 0.0
    assert scores[1].psnr == pytest.approx(expected, abs=1e-9)


def test_newly_clipped_counts_only_what_the_model_clipped():
    reference = np.full((2, 5, 3), 128, dtype=np.uint8)
    reference[0, 0] = 255  # already white in the reference: not the model's doing
    output = reference.copy()
    output[0, 0] = 255
    output[0, 1, 2] = 255  # one channel blown out
    output[1, 4, 0] = 0  # one channel crushed
    assert newly_clipped(output, reference) == pytest.approx(2 / 10)


def test_summary_per_factor_counts_images_over_half_a_percent():
    reference = np.full((12, 20, 3), 100, dtype=np.uint8)

    def blow_out_a_corner(image):
        out = image.copy()
        out[0, :3] = 255  # 3 of 240 pixels: 1.25%
        return out

    scores = sweep([("a", reference), ("b", reference)], blow_out_a_corner, factors=(1.0, 0.25))
    summary = summarise(scores)
    assert [row.factor for row in summary] == [1.0, 0.25]
    assert summary[0].images == 2 and summary[0].images_over_half_percent == 2
    assert summary[0].max_newly_clipped == pytest.approx(3 / 240)
    assert stops(0.25) == "-2 EV" and stops(1.0) == "x1"
