"""The packaged default model: its card states what `lowlight eval` gives back, from today's network definition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirnet.architectures import resolve_arguments

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "mirnet" / "weights"
EVAL15 = REPO.parent / "shared" / "data" / "lol" / "eval15"


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((WEIGHTS / "default.json").read_text())


def test_the_card_states_what_the_model_issue_asks_for(card):
    for field in (
        "architecture",
        "arguments",
        "parameters",
        "gflops_per_600x400",
        "training",
        "validation",
        "eval15",
        "seconds_per_600x400",
    ):
        assert field in card, field
    for field in ("steps", "total_steps", "hours", "batch_size", "crop_size", "loss", "config"):
        assert field in card["training"], field
    for precision in ("fp32", "bf16", "fp32_fallback"):
        assert set(card["eval15"][precision]) >= {"psnr", "ssim"}
    assert set(card["seconds_per_600x400"]) >= {"fp32", "bf16", "seed_fp32"}


def test_the_packaged_model_is_the_shipped_architecture_at_its_defaults(card):
    """The defaults of mirnet-refined are what ships, and the card says the file was converted once from v21's."""
    assert card["architecture"] == "mirnet-refined"
    assert resolve_arguments("mirnet-refined", card["arguments"]) == resolve_arguments("mirnet-refined")
    assert "views" not in card["inference"]  # the network's own ``views`` say how many run
    converted = card["converted_from"]
    assert converted["commit"] == "ec77cf6" and converted["max_abs_output_difference_fp32"] <= 1e-5


def test_the_gflops_in_the_card_are_counted_from_the_graph(card):
    from mirnet.flops import count_flops, gflops_per_image
    from mirnet.models import load_model

    loaded = load_model()
    # Counted as inference runs it: 600x400 padded to the architecture's multiple (16 for fold 4: 608x400).
    assert count_flops(loaded.model, 400, 608) / 1e9 == pytest.approx(card["gflops_per_600x400"], abs=0.01)
    gflops = gflops_per_image(loaded.model, loaded.architecture, loaded.arguments)
    assert gflops == pytest.approx(card["gflops_per_600x400"], abs=0.01)


@pytest.mark.slow
def test_eval15_gives_back_the_figures_in_the_card(card):
    """``lowlight eval`` on eval15 from today's definition: fp32 with the network's own views, bf16 (what ships),
    and the card's fp32 fallback (what fp32 runs by default, for a CPU without bf16), each within 0.001 dB. Where
    this machine emulates bf16 (no AVX-512 BF16, AMX or GPU) its rounding differs from native bf16's: the card
    holds that machine's figure too."""
    from mirnet.evaluation import evaluate_folder
    from mirnet.inference import Enhancer, native_bf16
    from mirnet.models import load_model

    if not EVAL15.is_dir():
        pytest.skip(f"LOL eval15 is expected at {EVAL15}")
    loaded = load_model()
    runs = {
        "fp32": Enhancer(loaded, precision="fp32", views=loaded.arguments["views"]),
        "bf16": Enhancer(loaded, precision="bf16"),
        "fp32_fallback": Enhancer(loaded, precision="fp32"),
    }
    figures = {**card["eval15"], "bf16": card["eval15"]["bf16" if native_bf16() else "bf16_emulated"]}
    fallback = figures["fp32_fallback"]
    assert runs["fp32_fallback"].views == card["inference"]["fp32_views"] == fallback["views"]
    for name, enhancer in runs.items():
        scores = evaluate_folder(str(EVAL15), enhancer)
        assert len(scores.images) == 15
        mean_psnr, mean_ssim = scores.psnr, scores.ssim
        print(f"eval15 {name}: psnr {mean_psnr:.6f} ssim {mean_ssim:.6f}")
        assert mean_psnr == pytest.approx(figures[name]["psnr"], abs=1e-3), name
        assert mean_ssim == pytest.approx(figures[name]["ssim"], abs=1e-4), name
