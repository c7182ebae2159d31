"""scripts/anchor_brightness.py: a trained run and another model's body become one run folder that packages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.scripts.loading import load_script

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO.parent / "shared" / "data" / "lol" / "sample"
ARGUMENTS = {"channels": 4, "fold": 4, "num_rrg": 1, "num_mrb": 1, "refine": 4, "refine_keeps_mean": True}


def _save_random_mirnet(path: Path, seed: int, card: dict, **arguments) -> Path:
    from mirnet.architectures import build_model
    from mirnet.models import save_model

    arguments = {**ARGUMENTS, **arguments}
    model = build_model("mirnet", **arguments)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.05, size=w.shape).astype("float32") for w in model.get_weights()])
    save_model(model, path, {"architecture": "mirnet", "arguments": arguments, **card})
    return path


def _detail_run(tmp_path: Path) -> Path:
    run = tmp_path / "detail"
    run.mkdir()
    val_list = tmp_path / "val.txt"
    val_list.write_text("2.png\n9.png\n")
    training = {"data": str(SAMPLE), "validation_list": str(val_list), "steps": 10}
    card = {"training": training, "validation": {"psnr": 1.0, "ssim": 0.1}, "description": "the detail"}
    _save_random_mirnet(run / "best.keras", 1, card)
    (run / "config.json").write_text(json.dumps({"out": str(run)}))
    (run / "state.json").write_text(json.dumps({"step": 10, "seconds": 5.0}))
    (run / "log.csv").write_text("step,loss\n10,0.1\n")
    return run


def test_the_assembled_run_holds_the_anchored_model_and_says_where_it_came_from(tmp_path: Path) -> None:
    from mirnet.imageio import load_rgb_uint8
    from mirnet.models import file_sha256, load_model

    script = load_script("anchor_brightness")
    detail_run = _detail_run(tmp_path)
    anchor_path = _save_random_mirnet(tmp_path / "anchor.keras", 2, {"version": "anchor-v1"})
    out = tmp_path / "anchored"

    card = script.assemble(detail_run, anchor_path, 3, out, "the command")

    for name in ("config.json", "state.json", "log.csv"):
        assert (out / name).read_text() == (detail_run / name).read_text()
    assert card["arguments"] == {**ARGUMENTS, "body_views": 3, "anchor": True}
    assert card["inference"] == {"views": 1}
    assert card["anchor"]["version"] == "anchor-v1" and card["anchor"]["command"] == "the command"
    assert card["anchor"]["sha256"] == file_sha256(anchor_path)
    assert card["training"]["steps"] == 10  # the detail's training is what produced the weights
    assert card["validation"]["psnr"] != 1.0 and 0 < card["validation"]["ssim"] <= 1  # measured, not copied
    assert card["sha256"] == file_sha256(out / "best.keras")

    image = load_rgb_uint8(str(SAMPLE / "low" / "2.png"))[None, :64, :96].astype(np.float32) / 255
    anchored = np.asarray(load_model(out / "best.keras").model(image))  # unclipped, unlike an Enhancer's output
    anchor = np.asarray(load_model(anchor_path).model(image))
    detail = np.asarray(load_model(detail_run / "best.keras").model(image))
    assert np.abs(np.log(detail.mean(axis=(1, 2)) / anchor.mean(axis=(1, 2)))).max() > 0.05
    np.testing.assert_allclose(anchored.mean(axis=(1, 2)), anchor.mean(axis=(1, 2)), rtol=1e-4)


def test_an_anchor_of_another_shape_is_refused(tmp_path: Path) -> None:
    script = load_script("anchor_brightness")
    anchor_path = _save_random_mirnet(tmp_path / "anchor.keras", 2, {}, channels=8)
    with pytest.raises(SystemExit, match="the anchor's body must have the detail's shape"):
        script.assemble(_detail_run(tmp_path), anchor_path, 3, tmp_path / "out", "the command")
