"""A fine-tune keeps the loss and augmentation the active model was trained with, as its card records."""

from __future__ import annotations

import json
from pathlib import Path

from worker.retraining import _trained_recipe


def _model_with_card(folder: Path, training: dict) -> Path:
    path = folder / "model.keras"
    path.with_suffix(".json").write_text(json.dumps({"architecture": "mirnet", "training": training}))
    return path


def test_the_cards_loss_weights_and_exposure_jitter_carry_over(tmp_path: Path) -> None:
    card = {"ssim_weight": 0.2, "exposure_weight": 1.0, "exposure_jitter": 1.0, "pixel_loss": "rmse", "seed": 4}
    assert _trained_recipe(_model_with_card(tmp_path, card)) == {
        "ssim_weight": 0.2,
        "exposure_weight": 1.0,
        "exposure_jitter": 1.0,
        "pixel_loss": "rmse",
    }


def test_a_card_from_before_the_weights_existed_means_charbonnier_alone(tmp_path: Path) -> None:
    recipe = _trained_recipe(_model_with_card(tmp_path, {}))
    assert recipe == {"ssim_weight": 0.0, "exposure_weight": 0.0, "exposure_jitter": 0.0, "pixel_loss": "charbonnier"}


def test_the_packaged_card_records_its_loss_weights() -> None:
    packaged = Path(__file__).resolve().parents[2] / "mirnet" / "weights" / "default.keras"
    assert _trained_recipe(packaged)["ssim_weight"] > 0
