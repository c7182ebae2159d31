import json

import numpy as np
import pytest

from mirnet.architectures import build_model
from mirnet.models import ModelLoadError, card_path, load_model, save_model, upgrade_card


def test_saved_model_loads_back_to_identical_outputs(tiny_full_path, rng):
    loaded = load_model(tiny_full_path)
    x = rng.random((1, 24, 28, 3), dtype=np.float32)
    before = loaded.model(x).numpy()
    again = tiny_full_path.with_name("again.keras")
    save_model(loaded.model, again, loaded.card)
    assert np.array_equal(load_model(again).model(x).numpy(), before)


def test_card_is_written_beside_the_weights(tiny_lite_path):
    card = json.loads(card_path(tiny_lite_path).read_text())
    assert card["architecture"] == "mirnet-lite"
    assert card["parameters"] == load_model(tiny_lite_path).model.count_params()
    assert len(card["sha256"]) == 64


def test_save_requires_a_card_with_the_architecture(tiny_lite_path, tmp_path):
    model = load_model(tiny_lite_path).model
    with pytest.raises(ValueError, match="architecture"):
        save_model(model, tmp_path / "x.keras", {"arguments": {}})


def test_missing_models_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nope.keras")
    with pytest.raises(ModelLoadError, match="no packaged model named 'nope'"):
        load_model("nope")
    (tmp_path / "bare.keras").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="no model card"):
        load_model(tmp_path / "bare.keras")


def test_packaged_default_loads_offline():
    loaded = load_model()
    assert loaded.architecture == "mirnet-refined" and loaded.card["training"]["data"]
    assert loaded.model.count_params() == loaded.card["parameters"]


def test_a_refined_network_loads_back_to_identical_outputs(tmp_path, rng):
    arguments = {"channels": 4, "groups": 1, "blocks": 1, "fold": 2, "views": 2, "refine_views": 2}
    model = build_model("mirnet-refined", **arguments)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in model.get_weights()])
    save_model(model, tmp_path / "refined.keras", {"architecture": "mirnet-refined", "arguments": arguments})
    x = rng.random((1, 16, 24, 3), dtype=np.float32)
    assert np.array_equal(load_model(tmp_path / "refined.keras").model(x).numpy(), model(x).numpy())


# A card of the shipped lineage as retraining wrote it before issue 45 (v21's arguments, resolved).
OLD_LINEAGE = {
    "anchor": False, "body_views": 4, "channels": 32, "fold": 4, "num_mrb": 1, "num_rrg": 2, "refine": 16,
    "refine_blocks": 3, "refine_context": 16, "refine_context_features": True, "refine_context_groups": 1,
    "refine_context_to_path": True, "refine_features": True, "refine_fold": 1, "refine_keeps_mean": True,
    "refine_spread": True, "refine_views_features": False, "refine_views": 2,
}  # fmt: skip


def test_an_old_card_of_the_shipped_lineage_becomes_mirnet_refined():
    inference = {"views": 1, "precision": "bf16", "fp32_views": 3, "fp32_refine_views": 1}
    card = upgrade_card({"architecture": "mirnet", "arguments": OLD_LINEAGE, "inference": inference, "version": "v"})
    assert card == {
        "architecture": "mirnet-refined",
        "arguments": {"channels": 32, "groups": 2, "blocks": 1, "fold": 4, "views": 4, "refine_views": 2},
        "inference": {"precision": "bf16", "fp32_views": 3, "fp32_refine_views": 1},
        "version": "v",
    }
    # v20's card named no refine_views (one refinement) and no refine_views_features.
    v20 = {k: v for k, v in OLD_LINEAGE.items() if k not in ("refine_views", "refine_views_features")}
    assert upgrade_card({"architecture": "mirnet", "arguments": v20})["arguments"]["refine_views"] == 1


def test_old_plain_cards_get_the_new_names_and_todays_cards_pass_through():
    lite = {"architecture": "mirnet-lite", "arguments": {"num_rrg": 3, "num_mrb": 2, "channels": 64}}
    assert upgrade_card(lite)["arguments"] == {"groups": 3, "blocks": 2, "channels": 64}
    full = {"architecture": "mirnet", "arguments": {"num_rrg": 1, "num_mrb": 1, "channels": 8, "fold": 1}}
    assert upgrade_card(full) == {"architecture": "mirnet", "arguments": {"groups": 1, "blocks": 1, "channels": 8}}
    today = {"architecture": "mirnet-refined", "arguments": {"views": 4}, "inference": {"views": 1}}
    assert upgrade_card(today) is today


@pytest.mark.parametrize(
    "architecture, change",
    [
        ("mirnet", {"anchor": True}),
        ("mirnet", {"refine_fold": 2}),
        ("mirnet", {"refine_context_groups": 2}),
        ("mirnet", {"refine_keeps_mean": False}),
        ("mirnet", {"refine": 16, "refine_blocks": 0}),
        ("mirnet-lite", {}),
    ],
)
def test_old_cards_of_retired_experiments_are_clear_errors(architecture, change):
    with pytest.raises(ModelLoadError, match="retired from main.*ec77cf6"):
        upgrade_card({"architecture": architecture, "arguments": {**OLD_LINEAGE, **change}})


def test_an_old_plain_network_with_a_fold_is_retired():
    with pytest.raises(ModelLoadError, match="retired"):
        upgrade_card({"architecture": "mirnet", "arguments": {"num_rrg": 2, "num_mrb": 1, "channels": 32, "fold": 4}})


def test_a_fine_tune_saved_with_an_old_card_loads_and_builds_again(tmp_path, rng):
    """What retraining made before issue 45: today's layers under an old card. It loads as mirnet-refined, and its
    weights go into a network built from the upgraded card (what fine-tuning it again starts from)."""
    old = {**OLD_LINEAGE, "channels": 4, "num_rrg": 1, "fold": 2, "body_views": 2}
    arguments = {"channels": 4, "groups": 1, "blocks": 1, "fold": 2, "views": 2, "refine_views": 2}
    model = build_model("mirnet-refined", **arguments)
    save_model(model, tmp_path / "tuned.keras", {"architecture": "mirnet-refined", "arguments": arguments})
    card_file = card_path(tmp_path / "tuned.keras")
    card_file.write_text(json.dumps({**json.loads(card_file.read_text()), "architecture": "mirnet", "arguments": old}))
    loaded = load_model(tmp_path / "tuned.keras")
    assert (loaded.architecture, loaded.arguments) == ("mirnet-refined", arguments)
    again = build_model(loaded.architecture, **loaded.arguments)
    again.set_weights(loaded.model.get_weights())
    x = rng.random((1, 16, 24, 3), dtype=np.float32)
    assert np.array_equal(again(x).numpy(), loaded.model(x).numpy())
