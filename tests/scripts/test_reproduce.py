"""The recipe (configs/recipe) and scripts/reproduce.py, which trains its steps in order and packages the result."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.scripts.loading import SCRIPTS, load_script

REPO = SCRIPTS.parent
RECIPE = REPO / "configs" / "recipe"
SAMPLE = REPO.parent / "shared" / "data" / "lol" / "sample"


@pytest.fixture(scope="module")
def reproduce():
    return load_script("reproduce")


_LAYERS: dict[str, list[str]] = {}


def _weighted_layers(arguments: dict) -> list[str]:
    """The weighted layers of the network the arguments build (built once per argument set)."""
    from mirnet.architectures import build_model

    key = json.dumps(arguments, sort_keys=True)
    if key not in _LAYERS:
        _LAYERS[key] = [layer.name for layer in build_model("mirnet-refined", **arguments).layers if layer.weights]
    return _LAYERS[key]


def _trained(layers: list[str], patterns: list[str]) -> set[str]:
    return {name for name in layers if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)}


def test_every_step_is_a_training_config_of_the_full_network_chained_to_the_one_before(reproduce) -> None:
    from mirnet.training import TrainConfig

    steps = reproduce.load_steps()
    assert [step.number for step in steps] == list(range(1, 21))
    reproduce.check_chain(steps)  # each init_from is the previous step's runs/recipe/NN-.../best.keras
    for step in steps:
        config = TrainConfig(**json.loads(step.path.read_text()))  # an unknown or removed key fails here
        assert config.arch == "mirnet-refined" and config.out == f"runs/recipe/{step.path.stem}"
        assert "eval15" not in json.dumps(step.config)
        assert config.val_list == "../shared/data/lol/our485-val.txt" and config.data == "data/lol-train"
        assert _trained(_weighted_layers(config.arguments), config.train_layers)  # every step trains something
    # The views went inside the network at step 08 (1 before, 4 after); the refinement trains on their average.
    assert [step.config["arguments"]["views"] for step in steps] == [1] * 7 + [4] * 13
    assert {step.config["arguments"]["refine_views"] for step in steps} == {1}


def test_the_body_trains_first_then_the_refinement_grows_part_by_part_with_the_body_frozen(reproduce) -> None:
    steps = reproduce.load_steps()
    layers = _weighted_layers(steps[-1].config["arguments"])
    body = {name for name in layers if not name.startswith("refine_")}
    trained = [_trained(layers, step.config["train_layers"]) for step in steps]
    assert all(grown == body for grown in trained[:6])  # steps 01-06: the body, the refinement frozen at zero
    for before, after in zip(trained[6:], trained[7:], strict=False):
        assert not after & body and before <= after  # steps 07-20: only the refinement, never fewer parts
    assert trained[-1] == set(layers) - body  # by the last step every part of the refinement has grown


def test_a_dry_run_lists_the_steps_and_the_packaging() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "reproduce.py"), "--dry-run", "--runs", "/nonexistent/runs"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:20]] == sorted(path.name for path in RECIPE.glob("*.json"))
    assert all(line.endswith("[to do]") for line in lines[:20])
    assert lines[20].startswith("then package") and "'refine_views': 2" in lines[20]
    until = subprocess.run(
        [sys.executable, str(SCRIPTS / "reproduce.py"), "--dry-run", "--until", "7"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    assert len(until.stdout.splitlines()) == 7


def _tiny_data(root: Path) -> Path:
    """The LOL sample pairs cut to 64 x 96: real images, small enough for a step to take a second."""
    for side in ("low", "high"):
        (root / side).mkdir(parents=True)
        for path in sorted((SAMPLE / side).glob("*.png")):
            with Image.open(path) as image:
                image.crop((0, 0, 96, 64)).save(root / side / path.name)
    return root


@pytest.mark.slow
def test_a_recipe_runs_end_to_end_skips_finished_steps_and_packages_the_shipped_network(tmp_path: Path, reproduce):
    """The first and the last step of the recipe, chained (the body, then the whole refinement on the body's four
    views), trained a step each on a tiny network: what every run of the recipe does, in two steps."""
    from mirnet.models import load_model

    recipe = tmp_path / "recipe"
    recipe.mkdir()
    first, last = sorted(RECIPE.glob("*.json"))[0], sorted(RECIPE.glob("*.json"))[-1]
    (recipe / "01-body.json").write_text(first.read_text())
    (recipe / "02-refine.json").write_text(
        json.dumps({**json.loads(last.read_text()), "init_from": "runs/recipe/01-body/best.keras",
                    "out": "runs/recipe/02-refine"})
    )
    data = _tiny_data(tmp_path / "data")
    common = ["--recipe", str(recipe), "--data", str(data), "--val-list", "", "--runs", str(tmp_path / "runs"),
              "--steps-override", "1", "--tiny", "--out", str(tmp_path / "model.keras")]
    assert reproduce.main([*common, "--until", "1"]) == 0
    assert not (tmp_path / "model.keras").exists()  # stopped before the last step: nothing packaged
    body = (tmp_path / "runs" / "01-body" / "best.keras").stat().st_mtime_ns

    assert reproduce.main(common) == 0

    assert (tmp_path / "runs" / "01-body" / "best.keras").stat().st_mtime_ns == body  # finished: skipped
    packaged = load_model(tmp_path / "model.keras")
    assert packaged.architecture == "mirnet-refined"
    assert packaged.arguments == {"channels": 4, "groups": 1, "blocks": 1, "fold": 4, "views": 4, "refine_views": 2}
    assert packaged.card["inference"] == {"precision": "bf16", "fp32_views": 3, "fp32_refine_views": 1}
    training = packaged.card["training"]
    assert training["config"] == str(recipe / "02-refine.json") and training["train_layers"] == ["refine_*"]
    [stage] = training["earlier_stages"]
    assert stage["command"] == f"lowlight train --config {recipe / '01-body.json'}" and stage["steps"] == 1
    trained = load_model(tmp_path / "runs" / "02-refine" / "best.keras").model
    assert all((a == b).all() for a, b in zip(packaged.model.get_weights(), trained.get_weights(), strict=True))
