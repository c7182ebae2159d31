"""The lowlight command line, run as a user would, in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mirnet.cli import main


def lowlight(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "mirnet.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def test_enhance_reports_bad_files_and_does_the_others(tmp_path, lol_sample, tiny_full_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "dark.png").write_bytes((lol_sample / "low" / "2.png").read_bytes())
    Image.fromarray(np.zeros((5, 3, 4), np.uint8), "RGBA").save(inputs / "tiny-alpha.png")
    (inputs / "empty.png").write_bytes(b"")
    (inputs / "notes.png").write_text("not an image")
    out = tmp_path / "out"
    result = lowlight("enhance", str(inputs), "-o", str(out), "--model", str(tiny_full_path), "--tile", "256")
    assert result.returncode == 1, result.stderr
    assert "empty.png: the file is empty" in result.stderr
    assert "notes.png: not an image" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["dark.png", "tiny-alpha.png"]
    assert Image.open(out / "dark.png").size == (600, 400)
    assert Image.open(out / "tiny-alpha.png").mode == "RGBA"
    assert "2 enhanced" in result.stdout and "2 failed" in result.stdout


def test_enhance_globs_succeed_with_exit_zero(tmp_path, lol_sample, tiny_full_path):
    result = lowlight(
        "enhance", str(lol_sample / "low" / "[56].png"), "-o", str(tmp_path), "--model", str(tiny_full_path)
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["5.png", "6.png"]


def test_eval_prints_the_table_and_writes_json(tmp_path, lol_sample, tiny_full_path, capsys):
    report_path = tmp_path / "scores.json"
    code = main(["eval", "--data", str(lol_sample), "--model", str(tiny_full_path), "--json", str(report_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "PSNR for image 2.png:" in printed and "Average PSNR:" in printed and "SSIM" in printed
    document = json.loads(report_path.read_text())
    assert [image["name"] for image in document["images"]] == ["2.png", "5.png", "6.png", "9.png"]
    assert set(document["model"]) >= {"architecture", "arguments", "parameters", "source"}
    mean = np.mean([image["psnr"] for image in document["images"]])
    assert document["mean"]["psnr"] == mean
    assert "GT-mean PSNR" in printed and "not the standard metric" in printed
    assert document["mean"]["gt_mean_psnr"] == np.mean([image["gt_mean_psnr"] for image in document["images"]])


def test_info_describes_the_model(tiny_lite_path, capsys):
    assert main(["info", "--model", str(tiny_lite_path)]) == 0
    printed = capsys.readouterr().out
    assert "mirnet-lite" in printed and "parameters:" in printed


TINY_REFINED = {"channels": 4, "groups": 1, "blocks": 1, "fold": 4, "refine_views": 1}


def _save_refined(path: Path, views: int, inference: dict) -> Path:
    from mirnet.architectures import build_model
    from mirnet.models import save_model

    arguments = {**TINY_REFINED, "views": views}
    card = {"architecture": "mirnet-refined", "arguments": arguments, "inference": inference, "version": "t"}
    save_model(build_model("mirnet-refined", **arguments), path, card)
    return path


def test_info_counts_the_views_a_network_runs_inside_itself(capsys, tmp_path):
    path = _save_refined(tmp_path / "inside.keras", 3, {})
    assert main(["info", "--model", str(path)]) == 0
    assert "inference:    3 view(s) inside the network, fp32" in capsys.readouterr().out


def test_info_names_the_views_of_an_fp32_fallback(capsys, tmp_path):
    path = _save_refined(tmp_path / "inside.keras", 4, {"precision": "bf16", "fp32_views": 3})
    assert main(["info", "--model", str(path)]) == 0
    printed = capsys.readouterr().out
    expected = "4 view(s) inside the network, bf16 where the machine computes it natively and faster; in fp32 3 view(s)"
    assert expected in printed


def test_missing_model_is_a_clear_error(capsys, tmp_path):
    assert main(["info", "--model", str(tmp_path / "none.keras")]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_train_options_reach_the_runs_config(tmp_path, lol_sample):
    """Every training option given on the command line is what the run records (and so what it trains with)."""
    val_list = tmp_path / "val.txt"
    val_list.write_text("5.png\n")
    out = tmp_path / "run"
    code = main([
        "train", "--data", str(lol_sample), "--out", str(out), "--arch", "mirnet-lite", "--arg", "groups=1",
        "--arg", "blocks=1", "--arg", "channels=4", "--val-list", str(val_list), "--exposure-weight", "1.0",
        "--ssim-weight", "0.2", "--pixel-loss", "rmse", "--steps", "1", "--val-every", "1", "--checkpoint-every", "1",
        "--batch-size", "2", "--crop-size", "16", "--learning-rate", "1e-4", "--warmup-steps", "0", "--seed", "3",
        "--train-layer", "group_*",
    ])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["arch"] == "mirnet-lite" and config["arguments"] == {"groups": 1, "blocks": 1, "channels": 4}
    assert config["val_list"] == str(val_list) and config["train_layers"] == ["group_*"]
    assert config["exposure_weight"] == 1.0 and config["ssim_weight"] == 0.2
    assert config["learning_rate"] == 1e-4 and config["seed"] == 3 and config["crop_size"] == 16
    assert config["pixel_loss"] == "rmse"


def test_train_offers_no_option_of_a_dropped_experiment(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    offered = capsys.readouterr().out
    assert "--pixel-loss" in offered and "--train-layer" in offered  # the help is the one asked for
    for dropped in ("--ema-decay", "--exposure-jitter", "--exclude-list", "log-rmse"):
        assert dropped not in offered


def test_a_bare_train_builds_the_shipped_network():
    from mirnet.models import WEIGHTS_DIR
    from mirnet.training import TrainConfig

    shipped = json.loads((WEIGHTS_DIR / "default.json").read_text())
    assert TrainConfig(data="d", out="o").arch == shipped["architecture"] == "mirnet-refined"


def test_the_parser_offers_what_training_accepts_without_loading_tensorflow():
    code = (
        "import sys; from mirnet.cli import build_parser; parser = build_parser(); "
        "args = parser.parse_args(['train', '--pixel-loss', 'rmse', '--precision', 'bf16']); "
        "print(args.pixel_loss, args.precision, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["rmse", "bf16", "False", "False"]
    refused = lowlight("train", "--pixel-loss", "l2")
    assert refused.returncode == 2 and "invalid choice: 'l2'" in refused.stderr


def test_training_and_losses_take_their_names_from_one_place():
    from mirnet import choices, inference, losses, training

    assert losses.PIXEL_LOSSES is choices.PIXEL_LOSSES
    assert training.TrainConfig(data="d", out="o").pixel_loss == choices.DEFAULT_PIXEL_LOSS
    assert inference.PRECISIONS is choices.PRECISIONS
    with pytest.raises(ValueError, match="pixel loss must be one of"):
        losses.RestorationLoss(pixel="l2")
