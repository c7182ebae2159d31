"""scripts/model_history.py: the paired eval15 gain between versions and the figure of them."""

from __future__ import annotations

import numpy as np
import pytest

from tests.scripts.loading import load_script


def _version(script, label: str, psnrs: list[float], validation: float):
    images = {f"{i}.png": {"psnr": p, "ssim": 0.8, "gt_mean_psnr": p + 3} for i, p in enumerate(psnrs)}
    return script.Version(label, f"mirnet-{label}", validation, images)


def test_the_gain_between_versions_is_paired_per_image_with_its_standard_error() -> None:
    script = load_script("model_history")
    before = _version(script, "a", [20.0, 22.0, 18.0, 25.0], 21.0)
    after = _version(script, "b", [21.0, 22.5, 17.0, 27.0], 21.5)

    mean, error = script.paired_gain(before, after)

    differences = np.array([1.0, 0.5, -1.0, 2.0])
    assert mean == pytest.approx(differences.mean())
    assert error == pytest.approx(differences.std(ddof=1) / 2)
    table = script.table([before, after])
    assert "| a (mirnet-a) | 21.00 | 21.250 |" in table and f"{mean:+.3f} ± {error:.3f}" in table


def test_versions_scored_on_different_images_are_refused() -> None:
    script = load_script("model_history")
    with pytest.raises(ValueError, match="different images"):
        script.paired_gain(_version(script, "a", [20.0, 21.0], 21.0), _version(script, "b", [20.0, 21.0, 22.0], 22.0))


def test_the_figure_draws_every_image_the_mean_and_validation() -> None:
    script = load_script("model_history")
    versions = [_version(script, label, [20.0 + i, 23.0 - i, 21.0], 22.0 + i) for i, label in enumerate("abc")]
    drawing = script.svg(versions)
    assert drawing.count("<polyline") == 3 + 2
    assert all(f">{label}</text>" in drawing for label in "abc")
