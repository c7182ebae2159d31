"""The packaged default model: its card states what `lowlight eval` and the committed configs give back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirnet.architectures import INFERENCE_ONLY_ARGUMENTS, resolve_arguments

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "mirnet" / "weights"


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((WEIGHTS / "default.json").read_text())


def test_the_card_states_what_the_model_issue_asks_for(card):
    for field in ("architecture", "arguments", "parameters", "gflops_per_600x400", "training", "validation",
                  "eval15", "seconds_per_600x400"):
        assert field in card, field
    for field in ("steps", "total_steps", "hours", "batch_size", "crop_size", "loss", "config"):
        assert field in card["training"], field
    for precision in ("fp32", "bf16"):
        assert set(card["eval15"][precision]) >= {"psnr", "ssim"}
    assert set(card["seconds_per_600x400"]) >= {"fp32", "bf16", "seed_fp32"}


def test_the_committed_training_config_builds_the_packaged_architecture(card):
    config = json.loads((REPO / card["training"]["config"]).read_text())
    assert config["arch"] == card["architecture"]
    # Arguments added to an architecture later default to what older cards were built without; those that only
    # change how the trained weights run (the refinement's views) are the card's to choose.
    committed = resolve_arguments(config["arch"], config["arguments"])
    packaged = resolve_arguments(card["architecture"], card["arguments"])

    def trained(arguments: dict) -> dict:
        return {k: v for k, v in arguments.items() if k not in INFERENCE_ONLY_ARGUMENTS}

    assert trained(committed) == trained(packaged)
    if packaged != committed:  # the card says which weights these are, and how they ran when the config trained them
        assert resolve_arguments(card["architecture"], card["weights_from"]["arguments"]) == committed
    assert config["val_list"].endswith("our485-val.txt") and "eval15" not in config["data"]
    # Earlier stages trained the same body; later ones grew a refinement onto it, or changed the refinement and
    # moved the views inside the network.
    def body(arguments: dict) -> dict:
        return {k: v for k, v in arguments.items() if not k.startswith("refine") and k != "body_views"}

    for stage in card["training"]["earlier_stages"]:
        earlier = json.loads((REPO / stage["command"].split("--config ")[1]).read_text())
        assert earlier["arch"] == config["arch"] and body(earlier["arguments"]) == body(config["arguments"])
        assert "eval15" not in earlier["data"]


def test_each_training_stage_starts_from_the_best_weights_of_the_stage_before(card):
    commands = [stage["command"] for stage in card["training"]["earlier_stages"]] + [card["training"]["command"]]
    configs = [json.loads((REPO / command.split("--config ")[1]).read_text()) for command in commands]
    assert "init_from" not in configs[0] or configs[0]["init_from"] is None
    for before, after in zip(configs, configs[1:], strict=False):
        assert after["init_from"] == f"{before['out']}/best.keras"


def test_the_gflops_in_the_card_are_counted_from_the_graph(card):
    from mirnet.flops import count_flops, gflops_per_image
    from mirnet.models import load_model

    loaded = load_model()
    # Counted as inference runs it: 600x400 padded to the architecture's multiple (16 for fold 4: 608x400).
    assert count_flops(loaded.model, 400, 608) / 1e9 == pytest.approx(card["gflops_per_600x400"], abs=0.01)
    gflops = gflops_per_image(loaded.model, loaded.architecture, loaded.arguments)
    assert gflops == pytest.approx(card["gflops_per_600x400"], abs=0.01)


def test_eval15_gives_back_the_figures_in_the_card(card):
    from mirnet.evaluation import evaluate_folder
    from mirnet.inference import Enhancer
    from mirnet.models import load_model

    loaded = load_model()
    # fp32 with the network's own views (what bf16's cost is measured against), then the card's fp32 fallback:
    # what fp32 runs by default (a CPU without bf16).
    runs = [(Enhancer(loaded, views=loaded.arguments["body_views"]), card["eval15"]["fp32"])]
    if "fp32_views" in card["inference"]:
        runs.append((Enhancer(loaded), card["eval15"]["fp32_fallback"]))
        assert runs[1][0].views == card["inference"]["fp32_views"] == card["eval15"]["fp32_fallback"]["views"]
    for enhancer, figures in runs:
        scores = evaluate_folder(str(REPO.parent / "shared" / "data" / "lol" / "eval15"), enhancer)
        assert len(scores) == 15
        mean_psnr = sum(score.psnr for score in scores) / len(scores)
        mean_ssim = sum(score.ssim for score in scores) / len(scores)
        assert mean_psnr == pytest.approx(figures["psnr"], abs=1e-3)
        assert mean_ssim == pytest.approx(figures["ssim"], abs=1e-4)


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.json")), ids=lambda path: path.stem)
def test_every_committed_training_config_loads_and_never_touches_eval15(path):
    from mirnet.training import TrainConfig

    config = TrainConfig(**json.loads(path.read_text()))  # an unknown or renamed key fails here
    assert "eval15" not in config.data and "eval15" not in (config.val_list or "")
    assert config.val_list is None or config.val_list.endswith("our485-val.txt")
    assert config.exclude_list is None or (REPO / config.exclude_list).is_file()
