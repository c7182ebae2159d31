"""The gate scores a model as the workers serve it: the same precision, views and refinement views, so that a
candidate is promoted for what users get, not for the card's fp32 fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.retraining.conftest import SAMPLES
from web.settings import Settings
from worker.retraining import _evaluate

# A tiny shipped network that ships in bf16 with an fp32 fallback of fewer views, as the packaged card does.
ARGUMENTS = {"channels": 4, "groups": 1, "blocks": 1, "fold": 4, "views": 4, "refine_views": 2}
INFERENCE = {"precision": "bf16", "fp32_views": 3, "fp32_refine_views": 1}


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights everywhere (the refinement's zero-started parts too), so every view and part shows."""
    from mirnet.architectures import build_model
    from mirnet.models import save_model

    model = build_model("mirnet-refined", **ARGUMENTS)
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in model.get_weights()])
    path = tmp_path_factory.mktemp("gate") / "model.keras"
    save_model(model, path, {"architecture": "mirnet-refined", "arguments": ARGUMENTS, "inference": INFERENCE})
    return path


@pytest.fixture(scope="module")
def holdout() -> list:
    from mirnet.data import list_pairs, load_image_pair

    pairs = [load_image_pair(pair) for pair in list_pairs(SAMPLES)[:2]]
    return [type(pair)(pair.name, pair.low[:64, :96], pair.high[:64, :96]) for pair in pairs]


def _scores(model_path: Path, holdout: list, **options: object) -> tuple[float, float]:
    from mirnet.evaluation import evaluate_pairs
    from mirnet.inference import Enhancer
    from mirnet.models import load_model

    scores = evaluate_pairs(Enhancer(load_model(model_path), tile=None, **options), holdout)
    return scores.psnr, scores.ssim


def test_the_gate_scores_bf16_with_the_networks_views_where_workers_serve_bf16(model_path, holdout) -> None:
    served = _scores(model_path, holdout, precision="bf16", views=4)
    fallback = _scores(model_path, holdout, precision="fp32")  # 3 views, 1 refinement: what the gate used to score
    assert abs(served[0] - fallback[0]) > 1e-4  # the two are told apart

    gate = _evaluate(Settings.from_env({}, precision="bf16"), model_path, holdout)

    assert gate == pytest.approx(served, abs=1e-9)


def test_the_gate_scores_the_fp32_fallback_and_the_views_where_workers_serve_those(model_path, holdout) -> None:
    assert _evaluate(Settings.from_env({}, precision="fp32"), model_path, holdout) == pytest.approx(
        _scores(model_path, holdout, precision="fp32"), abs=1e-9
    )
    assert _evaluate(Settings.from_env({}, precision="fp32", views=2), model_path, holdout) == pytest.approx(
        _scores(model_path, holdout, precision="fp32", views=2), abs=1e-9
    )
