"""Data pipeline, loss, and training with checkpoints that survive a SIGKILL."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mirnet.data import (
    exclude_pairs,
    list_pairs,
    load_validation_arrays,
    read_name_list,
    split_pairs,
    training_dataset,
)
from mirnet.losses import RestorationLoss


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


def test_log_rmse_pixel_term_is_minus_each_images_psnr_scaled(rng):
    from mirnet.losses import LOG_RMSE_SCALE

    high = rng.random((3, 8, 8, 3), dtype=np.float32)
    low = high.copy()
    low[0, :2] += 0.3  # RMSE 0.15
    low[1] += 0.05  # RMSE 0.05
    low[2] += 0.01  # RMSE 0.01
    per_image = np.asarray(RestorationLoss(pixel="log-rmse", epsilon=0.0, reduction=None)(high, low))
    psnr = 20 * np.log10(1 / np.array([0.15, 0.05, 0.01]))
    assert per_image == pytest.approx(-LOG_RMSE_SCALE * np.log(10) / 20 * psnr, abs=1e-5)
    # Its gradient is the RMSE term's, weighed per image by LOG_RMSE_SCALE / RMSE: equal at RMSE 0.05.
    import tensorflow as tf

    predicted = tf.Variable(low)
    gradients = {}
    for pixel in ("rmse", "log-rmse"):
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(RestorationLoss(pixel=pixel, epsilon=0.0, reduction=None)(high, predicted))
        gradients[pixel] = tape.gradient(total, predicted).numpy()
    ratio = [np.abs(gradients["log-rmse"][i]).sum() / np.abs(gradients["rmse"][i]).sum() for i in range(3)]
    assert ratio == pytest.approx([LOG_RMSE_SCALE / 0.15, 1.0, LOG_RMSE_SCALE / 0.01], rel=1e-3)


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
    assert describe_loss(0.2, 1.0, "log-rmse") == "0.05 * ln(rmse) + 0.2 * (1 - SSIM) + 1 * |mean colour error|"


def test_crops_must_fit_where_the_architecture_drops_resolution(tmp_path, lol_sample):
    from mirnet.training import TrainConfig, Trainer

    arguments = {"fold": 4, "num_rrg": 1, "num_mrb": 1, "channels": 4}
    Trainer(TrainConfig(data=str(lol_sample), out=str(tmp_path / "a"), arch="mirnet", arguments=arguments,
                        crop_size=[400, 592]))
    with pytest.raises(ValueError, match="multiple of 16"):
        Trainer(TrainConfig(data=str(lol_sample), out=str(tmp_path / "b"), arch="mirnet", arguments=arguments,
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


def test_exclude_pairs_leaves_the_named_out_and_refuses_unknown_names(lol_sample):
    train, _ = split_pairs(list_pairs(lol_sample), ["9.png"])
    assert [p.name for p in exclude_pairs(train, ["6.png"])] == ["2.png", "5.png"]
    with pytest.raises(ValueError, match="not found among the training pairs"):
        exclude_pairs(train, ["6.png", "9.png"])  # a validation pair is not a training pair to leave out


def test_a_run_with_an_exclude_list_trains_without_those_pairs_and_says_so_in_its_card(tmp_path, lol_sample):
    """Sample pairs 5 and 6 are two shots of one scene: validating on 5 and leaving 6 out of training makes the
    validation pair a scene the network has never seen."""
    from mirnet.models import load_model
    from mirnet.training import TrainConfig, Trainer

    val_list, exclude_list = tmp_path / "val.txt", tmp_path / "twins.txt"
    val_list.write_text("5.png\n")
    exclude_list.write_text("# the other shot of 5.png\n6.png\n")
    config = TrainConfig(data=str(lol_sample), out=str(tmp_path / "run"), arch="mirnet",
                         arguments={"fold": 4, "num_rrg": 1, "num_mrb": 1, "channels": 4}, val_list=str(val_list),
                         exclude_list=str(exclude_list), steps=1, val_every=1, checkpoint_every=1, batch_size=2,
                         crop_size=32)
    trainer = Trainer(config, log=lambda _: None)
    assert [p.name for p in trainer.train_pairs] == ["2.png", "9.png"]
    assert [p.name for p in trainer.val_pairs] == ["5.png"]
    trainer.run()
    training = load_model(tmp_path / "run" / "best.keras").card["training"]
    assert training["train_pairs"] == 2 and training["excluded_list"] == str(exclude_list)

    exclude_list.write_text("5.png\n")
    with pytest.raises(ValueError, match="not found among the training pairs"):
        Trainer(TrainConfig(**{**config.__dict__, "out": str(tmp_path / "other")}))


def test_a_network_grown_from_trained_weights_starts_from_them_and_trains_only_the_layers_named(tmp_path, lol_sample):
    """Stage 10's recipe in small: v5's body (here a tiny one, trained a step) gains a zero-started refinement,
    and only ``refine_*`` trains, in bf16, across a resume."""
    from mirnet.models import load_model
    from mirnet.training import TrainConfig, Trainer, build_for_training

    val_list = tmp_path / "val.txt"
    val_list.write_text("9.png\n")
    body = {"fold": 4, "num_rrg": 1, "num_mrb": 1, "channels": 4}
    common = dict(data=str(lol_sample), val_list=str(val_list), arch="mirnet", val_every=2, checkpoint_every=2,
                  batch_size=2, crop_size=32)
    Trainer(TrainConfig(**common, out=str(tmp_path / "body"), arguments=body, steps=1), log=lambda _: None).run()
    source = load_model(tmp_path / "body" / "best.keras").model

    grown = dict(common, out=str(tmp_path / "grown"), arguments={**body, "refine": 4}, precision="bf16",
                 init_from=str(tmp_path / "body" / "best.keras"), train_layers=["refine_*"], learning_rate=1e-2)
    start = build_for_training(TrainConfig(**{**grown, "precision": "fp32"}, steps=2))
    x = np.random.default_rng(2).random((1, 32, 48, 3), dtype=np.float32)
    np.testing.assert_allclose(start(x), source(x), atol=1e-6)  # the same weights, and nothing added yet
    assert {layer.name for layer in start.layers if layer.trainable and layer.weights} == {
        "refine_1", "refine_2", "refine_out"}

    Trainer(TrainConfig(**grown, steps=2), log=lambda _: None).run()
    config = json.loads((tmp_path / "grown" / "config.json").read_text())
    (tmp_path / "grown" / "config.json").write_text(json.dumps({**config, "steps": 4}))
    Trainer(TrainConfig(**grown, steps=4), log=lambda _: None).run()  # resumes at step 2
    best = load_model(tmp_path / "grown" / "best.keras")
    for layer in source.layers:
        for kept, trained in zip(layer.get_weights(), best.model.get_layer(layer.name).get_weights(), strict=True):
            np.testing.assert_array_equal(kept, trained)  # the body is frozen, through the resume
    assert np.any(best.model.get_layer("refine_out").get_weights()[0])  # the refinement has moved off zero
    assert best.card["training"]["train_layers"] == ["refine_*"] and best.card["arguments"]["refine"] == 4

    with pytest.raises(ValueError, match="no layer 'head' with weights of shapes"):
        build_for_training(TrainConfig(**{**grown, "arguments": {**body, "channels": 8}}))
    with pytest.raises(ValueError, match="matches"):
        build_for_training(TrainConfig(**{**grown, "train_layers": ["nothing_*"]}))


def test_validation_arrays_are_the_named_pairs_whole_in_zero_to_one(lol_sample, tmp_path):
    from PIL import Image

    names = tmp_path / "val.txt"
    names.write_text("# held out\n6.png\n\n2.png\n")
    arrays = load_validation_arrays(lol_sample, names)
    assert len(arrays) == 2
    low, high = arrays[0]  # the folder's order (2 before 6), not the list's
    expected = np.asarray(Image.open(lol_sample / "high" / "2.png").convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_allclose(high, expected, atol=1e-6)
    assert low.shape == high.shape == (400, 600, 3) and low.mean() < high.mean()


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


def test_exposure_jitter_scales_each_dark_crop_by_one_gain_and_leaves_the_reference(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(4)
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    for i in range(4):  # dark enough that a gain of 2 never clips
        Image.fromarray(rng.integers(10, 120, (24, 24, 3), dtype=np.uint8)).save(tmp_path / "low" / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(tmp_path / "high" / f"{i}.png")
    pairs = list_pairs(tmp_path)
    plain = list(training_dataset(pairs, crop_size=16, batch_size=4, seed=3).take(4))
    jittered = list(training_dataset(pairs, crop_size=16, batch_size=4, seed=3, exposure_jitter=1.0).take(4))
    gains = []
    for (low, high), (low_j, high_j) in zip(plain, jittered, strict=True):
        assert np.array_equal(high.numpy(), high_j.numpy())  # same crops, reference untouched
        ratio = low_j.numpy() / low.numpy()
        per_crop = ratio.reshape(4, -1)
        assert np.allclose(per_crop, per_crop[:, :1], rtol=1e-5)  # one gain per crop
        gains.extend(per_crop[:, 0])
    gains = np.array(gains)
    assert np.all((gains >= 0.5 - 1e-6) & (gains <= 2.0 + 1e-6))
    assert gains.min() < 0.8 and gains.max() > 1.25  # it really varies, both ways
    again = next(iter(training_dataset(pairs, crop_size=16, batch_size=4, seed=3, exposure_jitter=1.0)))
    assert np.array_equal(again[0].numpy(), jittered[0][0].numpy())
    bright = np.full((1, 16, 16, 3), 0.9, np.float32)
    from mirnet.data import _jitter_exposure

    brightened = [_jitter_exposure(bright, 1.0, np.array([0, k])).numpy() for k in range(8)]
    assert all(b.max() <= 1.0 for b in brightened)
    assert any(b.max() == 1.0 for b in brightened)  # some gains pass 1/0.9 and are clipped
    with pytest.raises(ValueError, match="exposure_jitter"):
        training_dataset(pairs, crop_size=16, batch_size=4, seed=3, exposure_jitter=-1.0)


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
        "num_rrg=1",
        "--arg",
        "num_mrb=1",
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
    common = dict(data=str(lol_sample), out=str(tmp_path / "run"), arch="mirnet",
                  arguments={"fold": 4, "num_rrg": 1, "num_mrb": 1, "channels": 4}, val_list=str(val_list),
                  val_every=2, checkpoint_every=2, batch_size=2, crop_size=32, precision="bf16")
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

    # final.keras holds the last step's weights (not the best), in float32, with a card for that step.
    final = load_model(tmp_path / "run" / "final.keras")
    with dtype_policy("mixed_bfloat16"):
        last = keras.models.load_model(tmp_path / "run" / "checkpoint.keras", compile=False)
    assert all(np.array_equal(a, b) for a, b in zip(final.model.get_weights(), last.get_weights(), strict=True))
    step_two = checkpoint.get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(final.model.get_weights(), step_two, strict=True))
    assert {layer.dtype_policy.name for layer in final.model.layers if layer.weights} == {"float32"}
    assert final.card["training"]["steps"] == 4
    assert final.card["validation"]["psnr"] == pytest.approx(float(rows[-1]["val_psnr"]), abs=1e-3)

    with pytest.raises(ValueError, match="precision"):
        Trainer(TrainConfig(data=str(lol_sample), out=str(tmp_path / "other"), precision="fp16"))
