"""Tiny models and real LOL images for the model package's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "lol"


@pytest.fixture(scope="session")
def lol_sample() -> Path:
    path = SHARED_DATA / "sample"
    assert (path / "low").is_dir(), f"the LOL sample pairs are expected at {path}"
    return path


@pytest.fixture(scope="session")
def tiny_full_path(tmp_path_factory) -> Path:
    """A tiny full MIRNet (multi-scale blocks) saved with its card."""
    from mirnet.architectures import build_model
    from mirnet.models import save_model

    model = build_model("mirnet", groups=1, blocks=1, channels=4)
    path = tmp_path_factory.mktemp("models") / "tiny-full.keras"
    save_model(model, path, {"architecture": "mirnet", "arguments": {"groups": 1, "blocks": 1, "channels": 4}})
    return path


@pytest.fixture(scope="session")
def tiny_lite_path(tmp_path_factory) -> Path:
    """A tiny mirnet-lite with non-trivial weights (random, larger than Keras' init) saved with its card."""
    from mirnet.architectures import build_model
    from mirnet.models import save_model

    arguments = {"groups": 2, "blocks": 1, "channels": 6}
    model = build_model("mirnet-lite", **arguments)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in model.get_weights()])
    path = tmp_path_factory.mktemp("models") / "tiny-lite.keras"
    save_model(model, path, {"architecture": "mirnet-lite", "arguments": arguments})
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
