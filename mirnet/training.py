"""Training with checkpoints every N steps, exact resume after a kill, and the best model chosen on validation.

Everything a run needs lives in its output folder:

- ``config.json``: the run's configuration (a resumed run must be given the same one);
- ``checkpoint.keras`` + ``state.json``: the last checkpoint (model, optimizer, step), written atomically;
- ``log.csv``: one row per validation (step, loss, learning rate, val_psnr, val_ssim, seconds);
- ``best.keras`` + ``best.json``: the weights with the highest validation PSNR, with their model card.

A network can grow from a trained one: ``init_from`` copies the weights of every layer the two share by name, and
``train_layers`` trains only some layers (the parts grown so far), the others keeping their weights. The shipped
network's refinement parts all start at zero, so frozen there they change nothing (configs/recipe/).
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from mirnet.architectures import ARCHITECTURES, build_model, dtype_policy, resolve_arguments
from mirnet.choices import DEFAULT_PIXEL_LOSS, PRECISIONS
from mirnet.data import (
    ImagePair,
    Pair,
    crop_shape,
    list_pairs,
    load_image_pair,
    read_name_list,
    split_pairs,
    training_dataset,
)
from mirnet.evaluation import evaluate_pairs
from mirnet.inference import Enhancer
from mirnet.losses import RestorationLoss, describe_loss
from mirnet.models import LoadedModel, save_model

LOG_FIELDS = ["step", "loss", "learning_rate", "val_psnr", "val_ssim", "seconds"]
# The shipped network (mirnet.architectures): what a bare ``lowlight train`` trains.
DEFAULT_ARCH = "mirnet-refined"


@dataclass
class TrainConfig:
    """What a training run does. Saved beside the run so that it can be resumed and reproduced."""

    data: str
    out: str
    arch: str = DEFAULT_ARCH
    arguments: dict[str, Any] = field(default_factory=dict)
    val_list: str | None = None
    steps: int = 1000
    val_every: int = 250
    checkpoint_every: int = 50
    batch_size: int = 8
    crop_size: int | list[int] = 128  # one side, or [height, width]
    learning_rate: float = 2e-4
    pixel_loss: str = DEFAULT_PIXEL_LOSS  # or "rmse": mirnet.losses, mirnet.choices
    ssim_weight: float = 0.0  # loss = pixel term + ssim_weight * (1 - SSIM)
    exposure_weight: float = 0.0  # ... + exposure_weight * |error of each image's mean colour|
    min_learning_rate: float = 1e-6
    warmup_steps: int = 0
    seed: int = 0
    val_limit: int | None = None  # validate on the first N validation pairs only (quick runs)
    init_from: str | None = None  # start from these weights (fine-tuning)
    # Train only the layers named here (fnmatch patterns, e.g. ["refine_*"]); the others keep their weights
    # (init_from's, or their zero start).
    train_layers: list[str] | None = None
    # "bf16" computes in bfloat16 with float32 weights (about 1.5x faster per step on CPUs with AMX); validation
    # and the saved models are float32 either way, so what is chosen is what ships.
    precision: str = "fp32"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


@dataclass
class TrainResult:
    steps: int
    best_step: int | None
    best_val_psnr: float | None
    best_val_ssim: float | None
    best_path: Path
    seconds: float


def learning_rate_schedule(config: TrainConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """Cosine decay from ``learning_rate`` to ``min_learning_rate`` over the run, after an optional warm-up."""
    decay_steps = max(config.steps - config.warmup_steps, 1)
    if config.warmup_steps:
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.min_learning_rate,
            decay_steps=decay_steps,
            alpha=config.min_learning_rate / config.learning_rate,
            warmup_target=config.learning_rate,
            warmup_steps=config.warmup_steps,
        )
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps, alpha=config.min_learning_rate / config.learning_rate
    )


def build_for_training(config: TrainConfig) -> keras.Model:
    """The network of ``config`` at its precision, from ``init_from``'s weights if given, compiled with the run's
    optimizer and loss: what a new run starts from (and what ``scripts/bench_training.py`` times)."""
    arguments = resolve_arguments(config.arch, config.arguments)
    model = build_model(config.arch, policy=PRECISIONS[config.precision], **arguments)
    if config.init_from:
        load_weights_by_layer(model, keras.models.load_model(config.init_from, compile=False))
    if config.train_layers is not None:
        freeze_all_but(model, config.train_layers)
    loss = RestorationLoss(
        ssim_weight=config.ssim_weight, exposure_weight=config.exposure_weight, pixel=config.pixel_loss
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate_schedule(config)), loss=loss)
    return model


def load_weights_by_layer(model: keras.Model, source: keras.Model) -> int:
    """Copy ``source``'s weights into the layers of ``model`` with the same names; layers that ``source`` lacks
    keep their initial values, so a network can grow from a trained one. Every weighted layer of ``source`` must
    exist in ``model`` with the same shapes. Returns how many layers were copied."""
    targets = {layer.name: layer for layer in model.layers}
    copied = 0
    for layer in source.layers:
        if not layer.weights:
            continue
        target = targets.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if target is None or [tuple(w.shape) for w in target.weights] != shapes:
            raise ValueError(f"{model.name} has no layer {layer.name!r} with weights of shapes {shapes}")
        target.set_weights(layer.get_weights())
        copied += 1
    return copied


def freeze_all_but(model: keras.Model, patterns: list[str]) -> None:
    """Make only the layers whose names match one of ``patterns`` trainable."""
    for layer in model.layers:
        layer.trainable = any(fnmatch.fnmatchcase(layer.name, pattern) for pattern in patterns)
    if not any(layer.trainable and layer.weights for layer in model.layers):
        raise ValueError(f"no layer with weights of {model.name} matches {patterns}")


class Trainer:
    """Runs (or resumes) the training described by a :class:`TrainConfig`."""

    def __init__(
        self,
        config: TrainConfig,
        log: Callable[[str], None] = print,
        on_log_row: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``log`` receives messages; ``on_log_row`` each row written to log.csv (progress for callers)."""
        self.config = config
        self.log = log
        self.on_log_row = on_log_row
        self.out = Path(config.out)
        self._twin: keras.Model | None = None  # the float32 copy validated and saved (bf16 runs)
        self.arguments = resolve_arguments(config.arch, config.arguments)
        pairs = list_pairs(config.data)
        names = read_name_list(config.val_list) if config.val_list else []
        self.train_pairs, self.val_pairs = split_pairs(pairs, names)
        if config.val_limit is not None:
            self.val_pairs = self.val_pairs[: config.val_limit]
        self._check_config()

    def _check_config(self) -> None:
        if self.config.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, not {self.config.precision!r}")
        multiple = ARCHITECTURES[self.config.arch].size_multiple(self.arguments)
        if any(side % multiple for side in crop_shape(self.config.crop_size)):
            raise ValueError(
                f"crop_size {self.config.crop_size} must be a multiple of {multiple} for {self.config.arch} "
                f"{self.arguments} (its resolution drops by that factor)"
            )
        self.out.mkdir(parents=True, exist_ok=True)
        saved = self.out / "config.json"
        if saved.exists():
            previous = json.loads(saved.read_text())
            current = json.loads(self.config.to_json())
            defaults = asdict(TrainConfig(data="", out=""))  # keys added since an old run was started
            changed = sorted(k for k in current if previous.get(k, defaults.get(k)) != current[k])
            if changed:
                raise ValueError(f"{self.out} holds a run with a different configuration ({changed}); use a new --out")
        else:
            saved.write_text(self.config.to_json() + "\n")

    # Checkpoints ---------------------------------------------------------------------------------------------
    def _load_or_build(self) -> tuple[keras.Model, int, dict[str, Any]]:
        checkpoint, state_file = self.out / "checkpoint.keras", self.out / "state.json"
        if checkpoint.exists() and state_file.exists():
            state = json.loads(state_file.read_text())
            # Composite layers make their sublayers in __init__ under the global policy, so a bf16 checkpoint
            # is read under that policy too.
            with dtype_policy(PRECISIONS[self.config.precision]):
                model = keras.models.load_model(checkpoint, compile=True)
            self.log(f"resuming {self.out} at step {state['step']}")
            return model, int(state["step"]), state
        model = build_for_training(self.config)
        return (
            model,
            0,
            {"step": 0, "best_val_psnr": None, "best_val_ssim": None, "best_step": None, "seconds": 0.0},
        )

    def _save_checkpoint(self, model: keras.Model, state: dict[str, Any]) -> None:
        tmp = self.out / ".checkpoint.tmp.keras"
        model.save(tmp)
        os.replace(tmp, self.out / "checkpoint.keras")
        tmp_state = self.out / ".state.tmp.json"
        tmp_state.write_text(json.dumps(state, indent=2))
        os.replace(tmp_state, self.out / "state.json")

    def _card(self, state: dict[str, Any]) -> dict[str, Any]:
        """The model card of the best weights."""
        return {
            "architecture": self.config.arch,
            "arguments": self.arguments,
            "training": {
                "data": str(self.config.data),
                "train_pairs": len(self.train_pairs),
                "validation_pairs": len(self.val_pairs),
                "validation_list": self.config.val_list,
                "steps": state["best_step"],
                "batch_size": self.config.batch_size,
                "crop_size": self.config.crop_size,
                "learning_rate": self.config.learning_rate,
                "loss": describe_loss(self.config.ssim_weight, self.config.exposure_weight, self.config.pixel_loss),
                "pixel_loss": self.config.pixel_loss,
                "ssim_weight": self.config.ssim_weight,
                "exposure_weight": self.config.exposure_weight,
                "seed": self.config.seed,
                "init_from": self.config.init_from,
                "train_layers": self.config.train_layers,
                "precision": self.config.precision,
                "seconds": round(state["seconds"], 1),
            },
            "validation": {"psnr": state["best_val_psnr"], "ssim": state["best_val_ssim"]},
        }

    # The loop ------------------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        config = self.config
        model, step, state = self._load_or_build()
        # A fresh seed per resume point: the stream continues with new crops instead of replaying old ones.
        stream = iter(training_dataset(self.train_pairs, config.crop_size, config.batch_size, config.seed + step))
        validation = [load_image_pair(pair) for pair in self.val_pairs]
        train_step = make_train_step(model)
        self.log(
            f"training {config.arch} {self.arguments} ({model.count_params():,} parameters) on "
            f"{len(self.train_pairs)} pairs, validating on {len(self.val_pairs)}, steps {step}->{config.steps}"
        )
        started, seconds_before = time.monotonic(), float(state["seconds"])
        losses: list[float] = []
        bar = tqdm(total=config.steps, initial=step, unit="step", dynamic_ncols=True, desc="train")
        while step < config.steps:
            low, high = next(stream)
            losses.append(float(train_step(low, high)))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            state["step"] = step
            state["seconds"] = seconds_before + time.monotonic() - started
            if step % config.val_every == 0 or step == config.steps:
                self._validate(model, state, validation, losses)
                losses = []
            if step % config.checkpoint_every == 0 or step == config.steps:
                self._save_checkpoint(model, state)
        bar.close()
        return TrainResult(
            steps=step,
            best_step=state["best_step"],
            best_val_psnr=state["best_val_psnr"],
            best_val_ssim=state["best_val_ssim"],
            best_path=self.out / "best.keras",
            seconds=state["seconds"],
        )

    def _float32(self, model: keras.Model) -> keras.Model:
        """``model`` itself when it trains in fp32; otherwise a float32 copy of its current weights."""
        if self.config.precision == "fp32":
            return model
        if self._twin is None:
            self._twin = build_model(self.config.arch, **self.arguments)
        self._twin.set_weights(model.get_weights())
        return self._twin

    def _score(self, model: keras.Model, validation: list[ImagePair]) -> tuple[float, float]:
        """Mean PSNR/SSIM of ``model`` (float32) on the validation pairs, whole images in fp32."""
        loaded = LoadedModel(model, {"architecture": self.config.arch, "arguments": self.arguments}, "train", "")
        scores = evaluate_pairs(Enhancer(loaded, precision="fp32", tile=None), validation)
        return scores.psnr, scores.ssim

    def _validate(
        self, training: keras.Model, state: dict[str, Any], validation: list[ImagePair], losses: list[float]
    ) -> None:
        row: dict[str, Any] = {
            "step": state["step"],
            "loss": float(np.mean(losses)) if losses else math.nan,
            "learning_rate": float(keras.ops.convert_to_numpy(training.optimizer.learning_rate)),
            "seconds": round(state["seconds"], 1),
        }
        model = self._float32(training)
        if validation:
            val_psnr, val_ssim = self._score(model, validation)
            row.update(val_psnr=round(val_psnr, 4), val_ssim=round(val_ssim, 5))
            self.log(f"step {state['step']}: loss {row['loss']:.4f}, val PSNR {val_psnr:.3f} dB, SSIM {val_ssim:.4f}")
            if state["best_val_psnr"] is None or val_psnr > state["best_val_psnr"]:
                state.update(best_val_psnr=val_psnr, best_val_ssim=val_ssim, best_step=state["step"])
                save_model(model, self.out / "best.keras", self._card(state))
        else:
            # Without a validation split the last weights are the only choice.
            state.update(best_step=state["step"])
            save_model(model, self.out / "best.keras", self._card(state))
        self._append_log(row)

    def _append_log(self, row: dict[str, Any]) -> None:
        path = self.out / "log.csv"
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({key: row.get(key, "") for key in LOG_FIELDS})
        if self.on_log_row is not None:
            self.on_log_row(row)


def make_train_step(model: keras.Model) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """One optimizer step of a compiled ``model`` on a batch (low, high), traced once; returns the batch's loss.
    What :class:`Trainer` runs, and what ``scripts/bench_training.py`` times."""
    optimizer, loss_fn = model.optimizer, model.loss

    @tf.function(reduce_retracing=True)
    def train_step(low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(high, model(low, training=True)))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    return train_step


def train(config: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    return Trainer(config, log).run()


__all__ = [
    "DEFAULT_ARCH",
    "Pair",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_for_training",
    "freeze_all_but",
    "load_weights_by_layer",
    "make_train_step",
    "train",
]
