"""scripts/package_model.py soup: several runs from the packaged weights become one packaged model, their average."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.scripts.loading import load_script

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO.parent / "shared" / "data" / "lol" / "sample"
ARGUMENTS = {"channels": 4, "fold": 4, "num_rrg": 1, "num_mrb": 1, "refine": 4, "refine_keeps_mean": True}
PARENT_TRAINING = {
    "command": "lowlight train --config configs/parent.json",
    "config": "configs/parent.json",
    "earlier_stages": [{"command": "lowlight train --config configs/first.json", "steps": 7, "hours": 1.0}],
    "total_steps": 5,
    "hours": 0.5,
    "hours_all_stages": 1.5,
    "data": "the parent's data",
}


def _packaged_parent(weights: Path) -> Path:
    from mirnet.architectures import build_model
    from mirnet.models import save_model

    weights.mkdir()
    model = build_model("mirnet", **ARGUMENTS)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.05, size=w.shape).astype("float32") for w in model.get_weights()])
    card = {"architecture": "mirnet", "arguments": ARGUMENTS, "version": "parent-v1", "training": PARENT_TRAINING,
            "validation": {"psnr": 1.0, "ssim": 0.1}, "inference": {"views": 4, "precision": "bf16"}}
    save_model(model, weights / "default.keras", card)
    return weights / "default.keras"


def _train(tmp_path: Path, name: str, init_from: Path, seed: int, steps: int = 2) -> Path:
    from mirnet.training import TrainConfig, Trainer

    val_list = tmp_path / "val.txt"
    val_list.write_text("9.png\n")
    config = TrainConfig(data=str(SAMPLE), out=str(tmp_path / name), arch="mirnet", arguments=ARGUMENTS,
                         val_list=str(val_list), val_every=2, checkpoint_every=2, batch_size=2, crop_size=32,
                         steps=steps, seed=seed, init_from=str(init_from), learning_rate=1e-3)
    (tmp_path / "configs").mkdir(exist_ok=True)
    (tmp_path / "configs" / f"{name}.json").write_text(config.to_json())
    Trainer(config, log=lambda _: None).run()
    return tmp_path / name


@pytest.fixture(scope="module")
def draws(tmp_path_factory) -> Path:
    """A packaged parent and two 2-step runs from it (seeds 3 and 4), trained once for this module's tests."""
    root = tmp_path_factory.mktemp("soup")
    parent = _packaged_parent(root / "parent")
    for seed in (3, 4):
        _train(root, f"draw-{seed}", parent, seed)
    return root


@pytest.fixture
def script(draws, monkeypatch):
    module = load_script("package_model")
    monkeypatch.setattr(module, "REPO", draws)  # where committed configs are looked for
    return module


def _weights(draws: Path, tmp_path: Path) -> Path:
    """A copy of the packaged parent for one test to package over."""
    return Path(shutil.copytree(draws / "parent", tmp_path / "weights"))


def test_a_soup_is_the_average_of_the_runs_last_weights_and_its_card_names_every_run(tmp_path, draws, script):
    from mirnet.data import load_validation_arrays
    from mirnet.inference import Enhancer
    from mirnet.models import load_model
    from mirnet.training import evaluate_pairs

    weights = _weights(draws, tmp_path)
    runs = [draws / "draw-3", draws / "draw-4"]

    card = script.soup(runs, "soup-v1", "two draws", weights=weights)

    finals = [load_model(run / "final.keras").model.get_weights() for run in runs]
    packaged = load_model(weights / "default.keras")
    assert all(np.allclose(w, (a + b) / 2) for w, a, b in zip(packaged.model.get_weights(), *finals, strict=True))
    assert not all(np.allclose(a, b) for a, b in zip(*finals, strict=True))  # two draws, not one twice

    training = card["training"]
    assert [i["command"] for i in training["soup_of"]] == [
        "lowlight train --config configs/draw-3.json", "lowlight train --config configs/draw-4.json"
    ]
    assert [i["seed"] for i in training["soup_of"]] == [3, 4] and training["total_steps"] == 4
    assert training["config"] == "configs/draw-3.json"
    # The parent's own stage follows its earlier ones, with its steps and hours.
    assert training["earlier_stages"] == [
        *PARENT_TRAINING["earlier_stages"], {"command": PARENT_TRAINING["command"], "steps": 5, "hours": 0.5}
    ]
    assert training["hours_all_stages"] == pytest.approx(1.5 + training["hours"], abs=0.011)
    assert card["inference"] == {"views": 4, "precision": "bf16"} and card["version"] == "soup-v1"
    assert packaged.card["version"] == "soup-v1"

    # The validation figures are the soup's own, measured on the runs' validation split.
    arrays = load_validation_arrays(SAMPLE, draws / "val.txt")
    psnr, ssim, _ = evaluate_pairs(Enhancer(packaged, tile=None, views=1), arrays)  # a card validates 1 view
    assert card["validation"] == pytest.approx({"psnr": psnr, "ssim": ssim}, abs=1e-4)


def test_a_run_that_did_not_start_from_the_packaged_weights_or_did_not_finish_is_refused(tmp_path, draws, script):
    weights = _weights(draws, tmp_path)
    elsewhere = Path(shutil.copytree(draws / "draw-4", tmp_path / "elsewhere"))
    config = json.loads((elsewhere / "config.json").read_text())
    (elsewhere / "config.json").write_text(json.dumps({**config, "init_from": str(draws / "draw-3" / "final.keras")}))
    with pytest.raises(SystemExit, match="not the packaged parent-v1"):
        script.soup([draws / "draw-3", elsewhere], "soup-v1", "", weights=weights)

    unfinished = Path(shutil.copytree(draws / "draw-3", tmp_path / "unfinished"))
    state = json.loads((unfinished / "state.json").read_text())
    (unfinished / "state.json").write_text(json.dumps({**state, "step": 1}))
    with pytest.raises(SystemExit, match="has not finished its 2 steps"):
        script.soup([unfinished], "soup-v1", "", weights=weights)
