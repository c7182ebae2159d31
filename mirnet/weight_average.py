"""An exponential moving average of a network's weights (Polyak averaging), kept beside the training weights.

Each step after the optimizer's update, ``average = d * average + (1 - d) * weights`` with
``d = min(decay, (1 + t) / (10 + t))`` at the t-th update, so that a run from random weights is not dragged
towards them for thousands of steps. The average is what a run validates and ships when ``ema_decay`` is set:
it sits nearer the middle of the region the last few thousand steps wandered over than any single step does.

The average is saved with its step in ``ema.npz`` beside each checkpoint; a resumed run carries on from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


def check_decay(decay: float) -> None:
    """Refuse a decay outside (0, 1): 0 would keep only the last weights, 1 never move from the first."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema_decay must lie strictly between 0 and 1, not {decay}")


class WeightAverage:
    """The moving average of ``variables`` (a model's trainable variables, float32 even in a bf16 run)."""

    def __init__(self, variables: list[keras.Variable], decay: float) -> None:
        check_decay(decay)
        self.decay = decay
        self._variables = list(variables)
        self._average = [
            tf.Variable(keras.ops.convert_to_numpy(v.value), trainable=False, dtype=tf.float32) for v in self._variables
        ]
        self._updates = tf.Variable(0, dtype=tf.int64, trainable=False)

    def update(self) -> None:
        """Fold the current weights into the average (callable inside a ``tf.function``)."""
        self._updates.assign_add(1)
        t = tf.cast(self._updates, tf.float32)
        decay = tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + t) / (10.0 + t))
        for average, variable in zip(self._average, self._variables, strict=True):
            average.assign(decay * average + (1.0 - decay) * tf.cast(variable.value, tf.float32))

    def values(self) -> list[np.ndarray]:
        return [average.numpy() for average in self._average]

    def apply_to(self, model: keras.Model) -> None:
        """Give ``model`` (the same architecture, its own variables) the averaged weights."""
        targets = model.trainable_variables
        if len(targets) != len(self._average):
            raise ValueError(f"the model has {len(targets)} trainable variables, the average {len(self._average)}")
        for target, average in zip(targets, self._average, strict=True):
            target.assign(average.numpy())

    def save(self, path: str | os.PathLike, step: int) -> None:
        """Write the average and the step it belongs to atomically (a kill leaves the previous file whole)."""
        path = Path(path)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        arrays = {f"w{index:04d}": value for index, value in enumerate(self.values())}
        np.savez(tmp, step=np.int64(step), updates=self._updates.numpy(), **arrays)
        os.replace(tmp, path)

    def restore(self, path: str | os.PathLike) -> int:
        """Load what :meth:`save` wrote; returns the step it belongs to."""
        with np.load(path) as saved:
            names = sorted(name for name in saved.files if name.startswith("w"))
            if len(names) != len(self._average):
                raise ValueError(f"{path} holds {len(names)} averaged weights, the model has {len(self._average)}")
            for average, name in zip(self._average, names, strict=True):
                average.assign(saved[name])
            self._updates.assign(int(saved["updates"]))
            return int(saved["step"])
