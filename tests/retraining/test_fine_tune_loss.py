"""A fine-tune keeps the loss and trained layers of the active model's training, as its card records."""

from __future__ import annotations

import json
from pathlib import Path

from worker.retraining import inherit_inference, trained_recipe


def _model_with_card(folder: Path, training: dict) -> Path:
    path = folder / "model.keras"
    path.with_suffix(".json").write_text(json.dumps({"architecture": "mirnet", "training": training}))
    return path


def test_the_cards_loss_weights_and_trained_layers_carry_over(tmp_path: Path) -> None:
    card = {"ssim_weight": 0.2, "exposure_weight": 1.0, "pixel_loss": "rmse", "seed": 4, "train_layers": ["refine_*"]}
    assert trained_recipe(_model_with_card(tmp_path, card)) == {
        "ssim_weight": 0.2,
        "exposure_weight": 1.0,
        "pixel_loss": "rmse",
        "train_layers": ["refine_*"],
    }


def test_a_card_from_before_the_weights_existed_means_charbonnier_alone(tmp_path: Path) -> None:
    recipe = trained_recipe(_model_with_card(tmp_path, {}))
    assert recipe == {
        "ssim_weight": 0.0,
        "exposure_weight": 0.0,
        "pixel_loss": "charbonnier",
        "train_layers": None,
    }


def test_the_packaged_card_records_its_loss_weights_and_that_only_its_refinement_trained() -> None:
    packaged = Path(__file__).resolve().parents[2] / "mirnet" / "weights" / "default.keras"
    recipe = trained_recipe(packaged)
    assert recipe["ssim_weight"] > 0
    assert recipe["train_layers"] == ["refine_*"]


def test_a_candidate_runs_with_the_views_and_precision_of_the_model_it_was_tuned_from(tmp_path: Path) -> None:
    active = tmp_path / "active.keras"
    active.with_suffix(".json").write_text(json.dumps({"inference": {"views": 4, "precision": "bf16"}}))
    candidate = tmp_path / "candidate.keras"
    candidate.with_suffix(".json").write_text(json.dumps({"architecture": "mirnet", "sha256": "abc"}))

    inherit_inference(active, candidate)

    card = json.loads(candidate.with_suffix(".json").read_text())
    assert card == {"architecture": "mirnet", "sha256": "abc", "inference": {"views": 4, "precision": "bf16"}}
    (tmp_path / "plain.json").write_text(json.dumps({}))  # a parent without settings leaves the candidate alone
    inherit_inference(tmp_path / "plain.keras", candidate)
    assert json.loads(candidate.with_suffix(".json").read_text()) == card
