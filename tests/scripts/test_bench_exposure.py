"""scripts/bench_exposure.py end to end on a tiny network and two tiny LOL-layout pairs."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from tests.fixtures.platform import write_tiny_model
from tests.scripts.loading import load_script


def _lol_folder(root):
    rng = np.random.default_rng(0)
    for side in ("low", "high"):
        (root / side).mkdir(parents=True)
    for name in ("1.png", "2.png"):
        high = rng.integers(40, 250, size=(24, 32, 3), dtype=np.uint8)
        Image.fromarray(high).save(root / "high" / name)
        Image.fromarray(high // 6).save(root / "low" / name)
    return root


def test_the_sweep_scores_every_model_step_and_image(tmp_path, capsys):
    bench = load_script("bench_exposure")
    model = write_tiny_model(tmp_path / "tiny.keras")
    data = _lol_folder(tmp_path / "lol")
    out = tmp_path / "sweep.json"
    argv = ["--references", str(data), "--model", f"a={model}", "--model", f"b={model}", "--json", str(out)]
    assert bench.main([*argv, "--precision", "fp32", "--per-image"]) == 0
    document = json.loads(out.read_text())
    assert document["factors"] == [1.0, 0.5, 0.25, 0.125]
    assert [m["label"] for m in document["models"]] == ["a", "b"]
    first, second = document["models"]
    assert len(first["scores"]) == 2 * 4 and [row["images"] for row in first["summary"]] == [2, 2, 2, 2]
    assert [row["name"] for row in first["lol"]] == ["1.png", "2.png"]
    # The same weights on the same inputs: the two models' figures agree exactly.
    assert first["summary"] == second["summary"]
    table = capsys.readouterr().out
    assert "LOL low" in table and "-3 EV" in table and "x1" in table
