"""scripts/pin_exposure.py: training references take the model's mean colour; validation pairs stay as they are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.scripts.loading import load_script

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO.parent / "shared" / "data" / "lol" / "sample"


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255


def test_a_pinned_reference_takes_the_outputs_mean_colour_and_keeps_its_structure() -> None:
    script = load_script("pin_exposure")
    rng = np.random.default_rng(1)
    reference = rng.uniform(0.05, 0.6, size=(40, 60, 3))
    output = reference * np.array([0.7, 1.2, 0.9]) + rng.normal(0, 0.02, size=reference.shape)

    pinned = script.pinned_reference(reference, output).astype(np.float64) / 255

    assert pinned.mean(axis=(0, 1)) == pytest.approx(output.mean(axis=(0, 1)), abs=2e-3)
    for channel in range(3):  # one gain per channel: the reference's pattern is unchanged
        assert np.corrcoef(pinned[..., channel].ravel(), reference[..., channel].ravel())[0, 1] > 0.999


def test_only_training_references_are_rewritten(tmp_path: Path, tiny_model_path: Path) -> None:
    # tiny_model_path: the shared untrained model (tests/fixtures/platform.py)
    script = load_script("pin_exposure")
    val_list = tmp_path / "val.txt"
    val_list.write_text("9.png\n")
    out = tmp_path / "pinned"

    script.pin(tiny_model_path, SAMPLE, val_list, out)

    names = sorted(path.name for path in (SAMPLE / "high").iterdir())
    assert sorted(path.name for path in (out / "high").iterdir()) == names
    for name in names:
        assert (out / "low" / name).is_symlink()
        assert np.array_equal(_read(out / "low" / name), _read(SAMPLE / "low" / name))
    assert (out / "high" / "9.png").is_symlink()
    assert np.array_equal(_read(out / "high" / "9.png"), _read(SAMPLE / "high" / "9.png"))
    for name in set(names) - {"9.png"}:
        assert not (out / "high" / name).is_symlink()
        assert not np.array_equal(_read(out / "high" / name), _read(SAMPLE / "high" / name))

    script.pin(tiny_model_path, SAMPLE, val_list, out)  # a second run replaces what the first wrote
    assert (out / "high" / "9.png").is_symlink()
