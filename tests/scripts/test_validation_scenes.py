"""scripts/validation_scenes.py on real LOL pairs: sample pairs 5 and 6 are two shots of one scene, whose
references differ in brightness by 16%; pairs 2 and 9 show other scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.scripts.loading import load_script

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO.parent / "shared" / "data" / "lol" / "sample"


def _brightness(name: str) -> float:
    return float(np.asarray(Image.open(SAMPLE / "high" / name).convert("RGB"), dtype=np.float64).mean() / 255)


def test_another_shot_of_a_validation_scene_is_its_twin_and_other_scenes_are_not(tmp_path: Path) -> None:
    script = load_script("validation_scenes")
    val_list = tmp_path / "val.txt"
    val_list.write_text("5.png\n9.png\n")

    search = script.find_twins(SAMPLE, val_list, threshold=0.95)

    by_name = {scene.name: scene for scene in search.scenes}
    assert by_name["5.png"].twins == ("6.png",)
    assert by_name["5.png"].best_correlation > 0.99
    expected_gap = abs(np.log(_brightness("5.png") / _brightness("6.png")))
    assert expected_gap > 0.1
    assert by_name["5.png"].brightness_gap == pytest.approx(expected_gap, rel=1e-6)
    assert by_name["9.png"].twins == ()
    assert by_name["9.png"].best_correlation < 0.5
    assert np.isnan(by_name["9.png"].brightness_gap)
    assert search.twin_names == {"6.png"} and search.train_count == 2
    assert search.has_twin() == {"5.png": True, "9.png": False}
    assert [pair.name for pair in search.validation] == [scene.name for scene in search.scenes] == ["5.png", "9.png"]
    assert search.train_brightness == pytest.approx([_brightness("2.png"), _brightness("6.png")], rel=1e-9)

    written = tmp_path / "lists" / "twins.txt"
    script.write_twin_list(search, written, threshold=0.95)
    from mirnet.data import read_name_list

    assert read_name_list(written) == ["6.png"]  # what a training config's exclude_list reads
    assert "1 of 2" in written.read_text()


def test_another_folders_references_are_matched_against_the_training_references_only(tmp_path: Path) -> None:
    """``twins --folder``: a test set's scene overlap with training. Here the "test set" holds pairs 5 and 9, and
    training is the sample without 6 and 9 (held out as validation): 5 is a training pair itself, 9's scene is in
    no training pair."""
    script = load_script("validation_scenes")
    folder = tmp_path / "test-set"
    for side in ("low", "high"):
        (folder / side).mkdir(parents=True)
        for name in ("5.png", "9.png"):
            (folder / side / name).write_bytes((SAMPLE / side / name).read_bytes())
    val_list = tmp_path / "val.txt"
    val_list.write_text("6.png\n9.png\n")
    best = dict(script.best_training_correlations(SAMPLE, val_list, folder))
    assert best["5.png"] == pytest.approx(1.0)  # pair 5 itself is a training pair
    assert best["9.png"] < 0.95  # pair 9 was held out, and no other sample pair shows its scene


def test_the_gain_over_the_first_model_is_paired_per_image_with_its_standard_error() -> None:
    script = load_script("validation_scenes")
    base = np.array([20.0, 21.0, 22.0, 23.0])
    psnr = base + np.array([1.0, 2.0, 3.0, 4.0])
    has_twin = np.array([True, True, False, False])

    line = script.paired_difference(psnr, "v3", base, has_twin)

    assert line == "vs v3: +2.500 ± 0.645 (+3.9 SE) | +1.500 ± 0.500 (+3.0 SE) | +3.500 ± 0.500 (+7.0 SE)"


def test_a_model_paired_with_itself_shows_no_ratio_of_gain_to_error() -> None:
    script = load_script("validation_scenes")
    psnr = np.array([20.0, 21.0, 22.0])

    line = script.paired_difference(psnr, "v3", psnr.copy(), np.array([True, True, False]))

    assert line == "vs v3: +0.000 ± 0.000 | +0.000 ± 0.000 | +0.000 ± nan"


def test_an_ensemble_spec_averages_the_outputs_of_its_models(tmp_path: Path) -> None:
    from mirnet.architectures import build_model
    from mirnet.inference import Enhancer
    from mirnet.models import save_model

    script = load_script("validation_scenes")
    arguments = {"num_rrg": 1, "num_mrb": 1, "channels": 4}
    for seed, name in enumerate(("a", "b")):
        model = build_model("mirnet-lite", **arguments)
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in model.get_weights()])
        save_model(model, tmp_path / f"{name}.keras", {"architecture": "mirnet-lite", "arguments": arguments})

    label, members = script._load_spec(f"ab={tmp_path / 'a.keras'}+{tmp_path / 'b.keras'}", tmp_path)
    image = np.random.default_rng(0).random((24, 32, 3), dtype=np.float32)
    alone = [Enhancer(loaded, tile=None).enhance(image) for loaded in members]
    averaged = script.Ensemble([Enhancer(loaded, tile=None) for loaded in members]).enhance(image)

    assert label == "ab" and [Path(loaded.source).name for loaded in members] == ["a.keras", "b.keras"]
    assert np.abs(alone[0] - alone[1]).max() > 1e-3  # two different networks
    np.testing.assert_allclose(averaged, (alone[0] + alone[1]) / 2, atol=1e-6)


def test_shipped_views_score_each_model_as_its_card_runs_it_and_pair_them(tmp_path: Path, capsys) -> None:
    """A network with its views inside ships with 1 view; the one before it with 3: ``--shipped`` pairs the two."""
    from mirnet.architectures import build_model
    from mirnet.models import save_model

    script = load_script("validation_scenes")
    arguments = {"num_rrg": 1, "num_mrb": 1, "channels": 4}
    for views, name in ((2, "a"), (None, "b")):
        model = build_model("mirnet-lite", **arguments)
        card = {"architecture": "mirnet-lite", "arguments": arguments}
        if views is not None:
            card["inference"] = {"views": views}
        save_model(model, tmp_path / f"{name}.keras", card)
    val_list = tmp_path / "val.txt"
    val_list.write_text("5.png\n9.png\n")

    script.score([f"a={tmp_path / 'a.keras'}", f"b={tmp_path / 'b.keras'}"], [None], SAMPLE, val_list, 0.95)

    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("a (shipped: 2 view(s)): ") and "vs" not in lines[1]
    assert lines[2].startswith("b (shipped: 1 view(s)): ") and "vs a: " in lines[2]


def test_the_first_models_later_views_pair_against_its_first_in_the_precision_asked(tmp_path: Path, capsys) -> None:
    """``--views 3 4``: what a 4th view gains is paired on the same images; ``--precision bf16`` runs in bf16."""
    from mirnet.architectures import build_model
    from mirnet.models import save_model

    script = load_script("validation_scenes")
    arguments = {"num_rrg": 1, "num_mrb": 1, "channels": 4}
    model = build_model("mirnet-lite", **arguments)
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(scale=0.1, size=w.shape).astype("float32") for w in model.get_weights()])
    save_model(model, tmp_path / "a.keras", {"architecture": "mirnet-lite", "arguments": arguments})
    val_list = tmp_path / "val.txt"
    val_list.write_text("5.png\n9.png\n")

    for precision in ("fp32", "bf16"):
        script.score([f"a={tmp_path / 'a.keras'}"], [1, 2], SAMPLE, val_list, 0.95, precision)
    lines = capsys.readouterr().out.splitlines()  # a heading and two lines, for each precision
    fp32, bf16 = lines[1:3], lines[4:6]
    assert fp32[0].startswith("a (1 view): ") and "vs" not in fp32[0]
    assert fp32[1].startswith("a (2 views): ") and "vs a (1 view(s)): " in fp32[1]
    assert bf16[0] != fp32[0]  # the precision reached the enhancer: bf16 rounds differently
