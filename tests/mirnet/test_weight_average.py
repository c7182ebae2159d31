"""The moving average of the weights: its arithmetic, its file, and a run that validates and ships it."""

import csv
import json

import numpy as np
import pytest


def _dense_model(units: int = 3):
    import keras

    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(units)(inputs))


def test_average_follows_its_definition_with_the_early_decay_ramp():
    from mirnet.weight_average import WeightAverage

    model = _dense_model()
    start = [w.copy() for w in model.get_weights()]
    average = WeightAverage(model.trainable_variables, decay=0.9)
    expected = [w.copy() for w in start]
    rng = np.random.default_rng(0)
    for t in range(1, 31):
        new = [rng.normal(size=w.shape).astype(np.float32) for w in start]
        model.set_weights(new)
        average.update()
        decay = min(0.9, (1 + t) / (10 + t))  # 0.18 at the first update, 0.9 from the 80th on
        expected = [decay * e + (1 - decay) * n for e, n in zip(expected, new, strict=True)]
    for got, want in zip(average.values(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The average is not the last weights: it moved towards them without reaching them.
    assert not np.allclose(average.values()[0], model.get_weights()[0])


def test_average_is_saved_with_its_step_and_restored_exactly(tmp_path):
    from mirnet.weight_average import WeightAverage

    model = _dense_model()
    average = WeightAverage(model.trainable_variables, decay=0.99)
    for _ in range(3):
        model.set_weights([w + 1.0 for w in model.get_weights()])
        average.update()
    average.save(tmp_path / "ema.npz", step=30)
    assert [p.name for p in tmp_path.iterdir()] == ["ema.npz"]  # no temporary file left behind

    other = WeightAverage(_dense_model().trainable_variables, decay=0.99)
    assert other.restore(tmp_path / "ema.npz") == 30
    for got, want in zip(other.values(), average.values(), strict=True):
        np.testing.assert_array_equal(got, want)
    # The decay ramp carries on where it was, not from the first update.
    assert int(other._updates.numpy()) == 3

    with pytest.raises(ValueError, match="averaged weights"):
        WeightAverage(_dense_model(units=3).trainable_variables[:1], decay=0.99).restore(tmp_path / "ema.npz")


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_decay_outside_the_open_interval_is_refused(decay, tmp_path, lol_sample):
    from mirnet.training import TrainConfig, Trainer
    from mirnet.weight_average import WeightAverage

    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(_dense_model().trainable_variables, decay=decay)
    with pytest.raises(ValueError, match="ema_decay"):
        Trainer(TrainConfig(data=str(lol_sample), out=str(tmp_path / "run"), ema_decay=decay))


def test_a_run_with_an_average_validates_and_ships_the_average_and_resumes_it(tmp_path, lol_sample):
    import keras

    from mirnet.models import load_model
    from mirnet.training import TrainConfig, Trainer

    val_list = tmp_path / "val.txt"
    val_list.write_text("9.png\n")
    out = tmp_path / "run"
    common = dict(data=str(lol_sample), out=str(out), arch="mirnet",
                  arguments={"fold": 4, "num_rrg": 1, "num_mrb": 1, "channels": 4}, val_list=str(val_list),
                  val_every=2, checkpoint_every=2, batch_size=2, crop_size=32, learning_rate=1e-2, ema_decay=0.5)
    Trainer(TrainConfig(**common, steps=2), log=lambda _: None).run()

    with np.load(out / "ema.npz") as saved:
        assert int(saved["step"]) == 2 and int(saved["updates"]) == 2
        averaged = [saved[name] for name in sorted(n for n in saved.files if n.startswith("w"))]
    best = load_model(out / "best.keras")
    checkpoint = keras.models.load_model(out / "checkpoint.keras", compile=False)
    # best.keras holds the average, not the last step's weights (a learning rate of 1e-2 makes them differ).
    for got, want in zip(best.model.trainable_variables, averaged, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)
    assert not all(
        np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(best.model.trainable_variables, checkpoint.trainable_variables, strict=True)
    )
    assert best.card["training"]["ema_decay"] == 0.5
    row = next(csv.DictReader((out / "log.csv").open()))
    assert row["val_psnr_raw"] and float(row["val_psnr_raw"]) != float(row["val_psnr"])
    assert best.card["validation"]["psnr"] == pytest.approx(float(row["val_psnr"]), abs=1e-3)

    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "steps": 4}))
    messages: list[str] = []
    Trainer(TrainConfig(**{**common, "steps": 4}), log=messages.append).run()
    assert not any("anew" in m for m in messages)
    with np.load(out / "ema.npz") as saved:
        assert int(saved["step"]) == 4 and int(saved["updates"]) == 4  # carried on, not restarted

    # An average that belongs to another step than the checkpoint (a kill between the two writes) is restarted.
    with np.load(out / "ema.npz") as saved:
        arrays = dict(saved)
    np.savez(out / "ema.npz", **{**arrays, "step": np.int64(3)})
    (out / "config.json").write_text(json.dumps({**config, "steps": 6}))
    messages = []
    Trainer(TrainConfig(**{**common, "steps": 6}), log=messages.append).run()
    assert any("belongs to step 3, not 4; averaging anew" in m for m in messages)
    with np.load(out / "ema.npz") as saved:
        assert int(saved["step"]) == 6 and int(saved["updates"]) == 2
