"""The gate scores a model as the workers serve it: the same precision, views and refinement views, so that a
candidate is promoted for what users get, not for the card's fp32 fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.retraining.conftest import SAMPLES
from web.core.settings import Settings
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

    pair = load_image_pair(list_pairs(SAMPLES)[0])
    return [type(pair)(pair.name, pair.low[:32, :48], pair.high[:32, :48])]


def _scores(model_path: Path, holdout: list, **options: object) -> tuple[float, float]:
    from mirnet.evaluation import evaluate_pairs
    from mirnet.inference import Enhancer
    from mirnet.models import load_model

    scores = evaluate_pairs(Enhancer(load_model(model_path), tile=None, **options), holdout)
    return scores.psnr, scores.ssim


@pytest.mark.slow
def test_the_gate_scores_what_workers_serve_bf16_or_the_fp32_fallback(model_path, holdout) -> None:
    """Where workers serve bf16 the gate scores bf16 with the network's 4 views and 2 refinements (the old gate
    scored the fp32 fallback's 3 views and 1 refinement whatever the workers ran); where they serve fp32, the
    fallback."""
    gate_bf16 = _evaluate(Settings.from_env({}, precision="bf16"), model_path, holdout)
    gate_fp32 = _evaluate(Settings.from_env({}, precision="fp32"), model_path, holdout)

    assert gate_bf16 == pytest.approx(_scores(model_path, holdout, precision="bf16", views=4), abs=1e-9)
    assert gate_fp32 == pytest.approx(_scores(model_path, holdout, precision="fp32"), abs=1e-9)
    assert abs(gate_bf16[0] - gate_fp32[0]) > 1e-4  # the two are told apart
