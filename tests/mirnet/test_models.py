import json

import numpy as np
import pytest

from mirnet.models import ModelLoadError, card_path, load_model, save_model


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
    assert loaded.card["training"]["data"]
    assert loaded.model.count_params() == loaded.card["parameters"]
