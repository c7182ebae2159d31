"""Data pipeline, loss, and training with checkpoints that survive a SIGKILL."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mirnet.data import list_pairs, load_validation_pairs, read_name_list, split_pairs, training_dataset
from mirnet.losses import RestorationLoss

TINY_LITE = {"groups": 1, "blocks": 1, "channels": 4}
# The shipped network, tiny: its refinement parts are all there (they are fixed), the body is small.
TINY_REFINED = {"channels": 4, "groups": 1, "blocks": 1, "fold": 4, "views": 1, "refine_views": 1}
RECIPE = Path(__file__).resolve().parents[2] / "configs" / "recipe"


def test_charbonnier_matches_its_definition(rng):
    a = rng.random((2, 4, 4, 3), dtype=np.float32)
    b = rng.random((2, 4, 4, 3), dtype=np.float32)
    expected = np.mean(np.sqrt((a - b) ** 2 + 1e-6))
    assert float(RestorationLoss()(a, b)) == pytest.approx(expected, rel=1e-5)


def test_ssim_term_adds_the_weighted_structural_dissimilarity(rng):
    from skimage.metrics import structural_similarity

    high = rng.random((1, 48, 48, 3), dtype=np.float32)
    low = np.clip(high + rng.normal(0, 0.1, high.shape), 0, 1).astype(np.float32)
    plain = float(RestorationLoss()(high, low))
    weighted = float(RestorationLoss(ssim_weight=0.5)(high, low))
    reference = structural_similarity(
        high[0], low[0], data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )
    assert weighted - plain == pytest.approx(0.5 * (1 - reference), abs=2e-3)
    assert float(RestorationLoss(ssim_weight=0.5)(high, high)) == pytest.approx(1e-3, abs=1e-4)


def test_exposure_term_adds_the_weighted_error_of_each_images_mean_colour(rng):
    high = rng.random((2, 16, 16, 3), dtype=np.float32)
    # Image 0 too dark by 0.1 in every channel, image 1 with its pixels shuffled: same means, no exposure error.
    low = np.stack([high[0] - 0.1, rng.permuted(high[1].reshape(-1, 3), axis=0).reshape(16, 16, 3)])
    loss = RestorationLoss(exposure_weight=2.0, reduction=None)
    per_image = np.asarray(loss(high, low)) - np.asarray(RestorationLoss(reduction=None)(high, low))
    assert per_image == pytest.approx([2.0 * 0.1, 0.0], abs=1e-5)


def test_exposure_term_is_signed_per_channel_before_its_absolute_value(rng):
    high = rng.random((1, 8, 8, 3), dtype=np.float32)
    shifted = high + np.array([0.1, -0.1, 0.0], dtype=np.float32)  # red too bright, green too dark
    extra = float(RestorationLoss(exposure_weight=1.0)(high, shifted)) - float(RestorationLoss()(high, shifted))
    assert extra == pytest.approx((0.1 + 0.1 + 0.0) / 3, abs=1e-5)


def test_rmse_pixel_term_is_each_images_root_mean_square_error(rng):
    high = rng.random((2, 8, 8, 3), dtype=np.float32)
    low = high.copy()
    low[0, :2] += 0.3  # a quarter of image 0 off by 0.3: RMSE 0.15, where an L1 would give 0.075
    per_image = np.asarray(RestorationLoss(pixel="rmse", epsilon=0.0, reduction=None)(high, low))
    assert per_image == pytest.approx([0.15, 0.0], abs=1e-5)
    charbonnier = np.asarray(RestorationLoss(epsilon=0.0, reduction=None)(high, low))
    assert charbonnier == pytest.approx([0.075, 0.0], abs=1e-5)


def test_an_unknown_pixel_term_is_refused():
    with pytest.raises(ValueError, match="pixel loss must be one of"):
        RestorationLoss(pixel="l3")


def test_loss_weights_survive_serialization():
    import keras

    loss = RestorationLoss(ssim_weight=0.2, exposure_weight=1.0, pixel="rmse")
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (again.ssim_weight, again.exposure_weight, again.pixel) == (0.2, 1.0, "rmse")


def test_describe_loss_names_each_weighted_term():
    from mirnet.losses import describe_loss

    assert describe_loss(0.0, 0.0) == "charbonnier"
    assert describe_loss(0.2, 0.0) == "charbonnier + 0.2 * (1 - SSIM)"
    assert describe_loss(0.2, 1.0) == "charbonnier + 0.2 * (1 - SSIM) + 1 * |mean colour error|"
    assert describe_loss(0.2, 1.0, "rmse") == "rmse + 0.2 * (1 - SSIM) + 1 * |mean colour error|"


def test_crops_must_fit_where_the_architecture_drops_resolution(tmp_path, lol_sample):
    from mirnet.training import TrainConfig, Trainer

    Trainer(TrainConfig(data=str(lol_sample), out=str(tmp_path / "a"), arguments=TINY_REFINED, crop_size=[400, 592]))
    with pytest.raises(ValueError, match="multiple of 16"):
        Trainer(TrainConfig(data=str(lol_sample), out=str(tmp_path / "b"), arguments=TINY_REFINED,
                            crop_size=[400, 600]))


def test_a_run_started_before_a_config_field_existed_still_resumes(tmp_path, lol_sample):
    from mirnet.training import TrainConfig, Trainer

    config = TrainConfig(data=str(lol_sample), out=str(tmp_path / "run"))
    saved = json.loads(config.to_json())
    del saved["ssim_weight"]  # a run written by an older version
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
    Trainer(config)  # accepted: the missing field has its default
    with pytest.raises(ValueError, match="ssim_weight"):
        Trainer(TrainConfig(data=str(lol_sample), out=str(tmp_path / "run"), ssim_weight=0.2))


def test_split_by_names_and_refuse_unknown_names(lol_sample):
    pairs = list_pairs(lol_sample)
    train, val = split_pairs(pairs, ["5.png"])
    assert [p.name for p in val] == ["5.png"] and len(train) == 3
    with pytest.raises(ValueError, match="not found"):
        split_pairs(pairs, ["500.png"])


def _recipe_layers(name: str) -> list[str]:
    return json.loads(next(RECIPE.glob(f"{name}-*.json")).read_text())["train_layers"]


def _zero_started(model) -> dict[str, list[np.ndarray]]:
    """The weights of the refinement's parts that start at zero (their last convolutions)."""
    names = ["refine_out", "refine_spread", "refine_features", "refine_from_context", "refine_context_tail",
             "refine_context_features", "refine_block_1b", "refine_block_2b", "refine_block_3b"]
    return {name: model.get_layer(name).get_weights() for name in names}


@pytest.mark.slow
def test_the_recipes_train_layers_leave_the_parts_not_grown_yet_at_zero(tmp_path, lol_sample):
    """The recipe in small: step 01 trains the body of the full network with the refinement frozen at its zero
    start (so the network computes its body's output exactly); step 07 then trains the refinement's first
    convolutions from those weights, the body frozen, while the parts it has not grown yet stay exactly zero."""
    import keras

    from mirnet.architectures import build_model
    from mirnet.models import load_model, save_model
    from mirnet.training import TrainConfig, Trainer

    # No validation split (the last step's weights are kept): validation is not what is tested here.
    common = dict(data=str(lol_sample), arguments=TINY_REFINED, val_every=1, checkpoint_every=1, batch_size=2,
                  crop_size=16, learning_rate=1e-2, steps=1)
    start = build_model("mirnet-refined", **TINY_REFINED)  # saved, so that the run starts from known weights
    save_model(start, tmp_path / "start.keras", {"architecture": "mirnet-refined", "arguments": TINY_REFINED})
    Trainer(TrainConfig(**common, out=str(tmp_path / "body"), init_from=str(tmp_path / "start.keras"),
                        train_layers=_recipe_layers("01")), log=lambda _: None).run()
    body = load_model(tmp_path / "body" / "best.keras").model
    for layer in body.layers:
        if layer.name.startswith("refine_"):  # every part of the refinement as it started
            for trained, initial in zip(layer.get_weights(), start.get_layer(layer.name).get_weights(), strict=True):
                np.testing.assert_array_equal(trained, initial)
    assert not np.array_equal(body.get_layer("head").get_weights()[0], start.get_layer("head").get_weights()[0])
    assert all(not np.any(w) for weights in _zero_started(body).values() for w in weights)
    x = np.random.default_rng(2).random((1, 32, 48, 3), dtype=np.float32)
    views_average = keras.Model(body.inputs, body.get_layer("enhanced").output)
    np.testing.assert_allclose(body(x), views_average(x), atol=1e-6)  # the refinement changes nothing

    grown = dict(common, out=str(tmp_path / "refine"), init_from=str(tmp_path / "body" / "best.keras"),
                 train_layers=_recipe_layers("07"))
    Trainer(TrainConfig(**grown), log=lambda _: None).run()
    refined = load_model(tmp_path / "refine" / "best.keras")
    for layer in body.layers:
        if not layer.name.startswith("refine_"):  # the body is frozen
            for kept, now in zip(layer.get_weights(), refined.model.get_layer(layer.name).get_weights(), strict=True):
                np.testing.assert_array_equal(kept, now)
    still_zero = _zero_started(refined.model)
    assert np.any(still_zero.pop("refine_out")[0])  # the grown part has moved off zero
    assert all(not np.any(w) for weights in still_zero.values() for w in weights)
    assert refined.card["training"]["train_layers"] == _recipe_layers("07")


def test_growing_refuses_weights_of_other_shapes_and_layer_patterns_that_match_nothing(tmp_path, tiny_lite_path):
    from mirnet.training import TrainConfig, build_for_training

    common = dict(data="d", out=str(tmp_path), arch="mirnet-lite", init_from=str(tiny_lite_path))
    with pytest.raises(ValueError, match="no layer 'head' with weights of shapes"):
        build_for_training(TrainConfig(**common, arguments={"groups": 2, "blocks": 1, "channels": 8}))
    with pytest.raises(ValueError, match="matches"):
        build_for_training(TrainConfig(**common, arguments={"groups": 2, "blocks": 1, "channels": 6},
                                       train_layers=["nothing_*"]))


def test_evaluation_scores_each_pair_whole_and_refuses_pairs_of_two_sizes(tiny_lite_path, lol_sample):
    from mirnet.data import ImagePair, load_image_pair
    from mirnet.evaluation import evaluate_folder, evaluate_pairs
    from mirnet.imageio import to_uint8
    from mirnet.inference import Enhancer
    from mirnet.metrics import psnr
    from mirnet.models import load_model

    enhancer = Enhancer(load_model(tiny_lite_path), precision="fp32", tile=None)
    seen = []
    scores = evaluate_folder(lol_sample, enhancer, on_image=lambda index, score: seen.append((index, score.name)))
    assert seen == [(1, "2.png"), (2, "5.png"), (3, "6.png"), (4, "9.png")]
    pair = load_image_pair(list_pairs(lol_sample)[0])
    alone = psnr(to_uint8(enhancer.enhance(pair.low)), to_uint8(pair.high))
    assert scores.images[0].psnr == pytest.approx(alone, abs=1e-9)
    assert scores.psnr == pytest.approx(np.mean([s.psnr for s in scores.images]), abs=1e-12)
    assert evaluate_pairs(enhancer, []).psnr is None
    with pytest.raises(ValueError, match="x.png: low .* and high .* differ in size"):
        evaluate_pairs(enhancer, [ImagePair("x.png", pair.low, pair.high[:-1])])


def test_validation_pairs_are_the_named_pairs_whole_in_zero_to_one(lol_sample, tmp_path):
    from PIL import Image

    names = tmp_path / "val.txt"
    names.write_text("# held out\n6.png\n\n2.png\n")
    pairs = load_validation_pairs(lol_sample, names)
    assert [pair.name for pair in pairs] == ["2.png", "6.png"]  # the folder's order, not the list's
    expected = np.asarray(Image.open(lol_sample / "high" / "2.png").convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_allclose(pairs[0].high, expected, atol=1e-6)
    assert pairs[0].low.shape == pairs[0].high.shape == (400, 600, 3) and pairs[0].low.mean() < pairs[0].high.mean()


def test_the_shipped_validation_list_is_disjoint_from_eval15(lol_sample):
    names = read_name_list(lol_sample.parent / "our485-val.txt")
    assert len(names) == 48
    assert not set(names) & {p.name for p in (lol_sample.parent / "eval15" / "low").iterdir()}


@pytest.mark.parametrize(("crop_size", "shape"), [(16, (16, 16)), ([32, 48], (32, 48))])
def test_crops_are_aligned_and_reproducible(tmp_path, crop_size, shape):
    """high = 1 - low pixel for pixel, so any misaligned crop or flip would break the relation."""
    from PIL import Image

    rng = np.random.default_rng(3)
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    for i in range(3):
        low = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
        Image.fromarray(low).save(tmp_path / "low" / f"{i}.png")
        Image.fromarray(255 - low).save(tmp_path / "high" / f"{i}.png")
    pairs = list_pairs(tmp_path)
    batches = list(training_dataset(pairs, crop_size=crop_size, batch_size=4, seed=7).take(3))
    for low, high in batches:
        assert low.shape == (4, *shape, 3)
        assert np.allclose(low.numpy() + high.numpy(), 1.0, atol=1e-6)
    again = list(training_dataset(pairs, crop_size=crop_size, batch_size=4, seed=7).take(3))
    assert all(np.array_equal(a[0].numpy(), b[0].numpy()) for a, b in zip(batches, again, strict=True))
    other = next(iter(training_dataset(pairs, crop_size=crop_size, batch_size=4, seed=8)))
    assert not np.array_equal(other[0].numpy(), batches[0][0].numpy())


def _train_command(out, lol_sample, val_list, steps):
    return [
        sys.executable,
        "-m",
        "mirnet.cli",
        "train",
        "--data",
        str(lol_sample),
        "--val-list",
        str(val_list),
        "--arch",
        "mirnet-lite",
        "--arg",
        "groups=1",
        "--arg",
        "blocks=1",
        "--arg",
        "channels=4",
        "--out",
        str(out),
        "--steps",
        str(steps),
        "--val-every",
        "4",
        "--checkpoint-every",
        "2",
        "--batch-size",
        "2",
        "--crop-size",
        "32",
        "--ssim-weight",
        "0.1",
        "--exposure-weight",
        "0.5",
    ]


@pytest.mark.slow
def test_training_resumes_after_sigkill_and_keeps_the_best_on_validation(tmp_path, lol_sample):
    val_list = tmp_path / "val.txt"
    val_list.write_text("9.png\n")
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen(
        _train_command(out, lol_sample, val_list, 400), env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = out / "state.json"
        if state.exists() and json.loads(state.read_text())["step"] >= 6:
            break
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = json.loads((out / "state.json").read_text())["step"]
    assert 6 <= killed_at < 400

    # The same run, asked for fewer steps, is a different configuration and is refused rather than mixed up.
    refused = subprocess.run(_train_command(out, lol_sample, val_list, 12), env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "different configuration" in refused.stderr

    # Shorten the saved budget so that the resumed run ends soon; it must start from the checkpoint, not zero.
    config = json.loads((out / "config.json").read_text())
    target = killed_at + 4
    config["steps"] = target
    (out / "config.json").write_text(json.dumps(config))
    resumed = subprocess.run(
        _train_command(out, lol_sample, val_list, target), env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {out} at step {killed_at}" in resumed.stdout
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert int(rows[-1]["step"]) == target
    best = max(rows, key=lambda row: float(row["val_psnr"]))
    card = json.loads((out / "best.json").read_text())
    assert card["training"]["steps"] == int(best["step"])
    assert card["validation"]["psnr"] == pytest.approx(float(best["val_psnr"]), abs=1e-3)
    assert card["training"]["validation_pairs"] == 1 and card["training"]["train_pairs"] == 3
    assert card["training"]["loss"] == "charbonnier + 0.1 * (1 - SSIM) + 0.5 * |mean colour error|"
    assert (card["training"]["ssim_weight"], card["training"]["exposure_weight"]) == (0.1, 0.5)


def test_bf16_training_validates_and_saves_float32_models_and_resumes(tmp_path, lol_sample):
    """Mixed bf16 is a way of computing the steps; what is validated, kept and shipped is a float32 model."""
    import keras

    from mirnet.architectures import dtype_policy
    from mirnet.models import load_model
    from mirnet.training import TrainConfig, Trainer

    val_list = tmp_path / "val.txt"
    val_list.write_text("9.png\n")
    common = dict(data=str(lol_sample), out=str(tmp_path / "run"), arch="mirnet-lite", arguments=TINY_LITE,
                  val_list=str(val_list), val_every=2, checkpoint_every=2, batch_size=2, crop_size=16, precision="bf16")
    Trainer(TrainConfig(**common, steps=2), log=lambda _: None).run()
    with dtype_policy("mixed_bfloat16"):
        checkpoint = keras.models.load_model(tmp_path / "run" / "checkpoint.keras", compile=False)
    policies = {layer.name: layer.dtype_policy.name for layer in checkpoint.layers if layer.weights}
    assert policies["group_1"] == "mixed_bfloat16" and policies["tail"] == "float32"  # the tail is fp32 by design

    best = load_model(tmp_path / "run" / "best.keras")
    assert {layer.dtype_policy.name for layer in best.model.layers if layer.weights} == {"float32"}
    assert best.card["training"]["precision"] == "bf16"
    # The saved float32 weights are the training weights, not a copy taken before the steps.
    assert all(np.array_equal(a, b) for a, b in zip(best.model.get_weights(), checkpoint.get_weights(), strict=True))

    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["steps"] = 4
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    messages: list[str] = []
    result = Trainer(TrainConfig(**{**common, "steps": 4}), log=messages.append).run()
    assert result.steps == 4 and any("resuming" in m and "at step 2" in m for m in messages)
    rows = list(csv.DictReader((tmp_path / "run" / "log.csv").open()))
    assert [int(row["step"]) for row in rows] == [2, 4]

    best = load_model(tmp_path / "run" / "best.keras")
    assert best.card["training"]["steps"] in (2, 4)
    assert best.card["validation"]["psnr"] == pytest.approx(max(float(row["val_psnr"]) for row in rows), abs=1e-3)

    with pytest.raises(ValueError, match="precision"):
        Trainer(TrainConfig(data=str(lol_sample), out=str(tmp_path / "other"), precision="fp16"))
