"""Training losses."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from mirnet.layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class CharbonnierLoss(keras.losses.Loss):
    """mean(sqrt((y - x)^2 + eps^2)): an L1 that is smooth at zero, as MIRNet trains with.

    With ``ssim_weight`` > 0 the loss adds ``ssim_weight * (1 - SSIM)``, SSIM computed as in the evaluation
    (11-px Gaussian window, sigma 1.5, on [0, 1] images): the pixel term fixes brightness and colour, the SSIM term
    rewards structure, which a dark, noisy input otherwise loses to smoothing.
    """

    def __init__(self, epsilon: float = 1e-3, ssim_weight: float = 0.0, name: str = "charbonnier", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = epsilon
        self.ssim_weight = ssim_weight

    def call(self, y_true, y_pred):
        y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        diff = y_pred - y_true
        loss = ops.mean(ops.sqrt(ops.square(diff) + self.epsilon**2), axis=(1, 2, 3))
        if self.ssim_weight:
            structural = tf.image.ssim(tf.clip_by_value(y_pred, 0.0, 1.0), y_true, max_val=1.0)
            loss = loss + self.ssim_weight * (1.0 - structural)
        return loss

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "ssim_weight": self.ssim_weight}
