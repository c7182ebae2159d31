"""Training losses."""

from __future__ import annotations

import keras
from keras import ops

from mirnet.layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class CharbonnierLoss(keras.losses.Loss):
    """mean(sqrt((y - x)^2 + eps^2)): an L1 that is smooth at zero, as MIRNet trains with."""

    def __init__(self, epsilon: float = 1e-3, name: str = "charbonnier", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        diff = ops.cast(y_pred, "float32") - ops.cast(y_true, "float32")
        return ops.mean(ops.sqrt(ops.square(diff) + self.epsilon**2), axis=(1, 2, 3))

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}
