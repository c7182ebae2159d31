"""Training losses."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from mirnet.choices import DEFAULT_PIXEL_LOSS, PIXEL_LOSSES
from mirnet.layers import PACKAGE


# Registered under the name older checkpoints were saved with, so that their runs still resume.
@keras.saving.register_keras_serializable(package=PACKAGE, name="CharbonnierLoss")
class RestorationLoss(keras.losses.Loss):
    """A pixel term per image, plus optional structure and exposure terms.

    The pixel term is ``pixel="charbonnier"``, mean(sqrt((y - x)^2 + eps^2)), an L1 that is smooth at zero, as
    MIRNet trains with; or ``pixel="rmse"``, sqrt(mean((y - x)^2) + eps^2), each image's root-mean-square error:
    what PSNR measures (PSNR = 20 log10(1 / RMSE)), on the same scale as the Charbonnier term. An L1-like term
    pulls towards the median residual, a squared one towards the mean, which is what PSNR rewards.

    With ``ssim_weight`` > 0 the loss adds ``ssim_weight * (1 - SSIM)``, SSIM computed as in the evaluation
    (11-px Gaussian window, sigma 1.5, on [0, 1] images): the pixel term fixes brightness and colour, the SSIM term
    rewards structure, which a dark, noisy input otherwise loses to smoothing.

    With ``exposure_weight`` > 0 it also adds ``exposure_weight * mean_c |mean(y_pred_c) - mean(y_true_c)|``, the
    error of each image's mean colour. An L1-like pixel term pulls towards the median residual, so a whole image
    can stay too dark or too bright while half its pixels are right; PSNR pays for that offset in full, and on LOL
    it is most of what the model loses (the GT-mean PSNR gap).
    """

    def __init__(
        self,
        epsilon: float = 1e-3,
        ssim_weight: float = 0.0,
        exposure_weight: float = 0.0,
        pixel: str = DEFAULT_PIXEL_LOSS,
        name: str = "restoration",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if pixel not in PIXEL_LOSSES:
            raise ValueError(f"pixel loss must be one of {PIXEL_LOSSES}, not {pixel!r}")
        self.pixel = pixel
        self.epsilon = epsilon
        self.ssim_weight = ssim_weight
        self.exposure_weight = exposure_weight

    def call(self, y_true, y_pred):
        y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        diff = y_pred - y_true
        if self.pixel == "rmse":
            loss = ops.sqrt(ops.mean(ops.square(diff), axis=(1, 2, 3)) + self.epsilon**2)
        else:
            loss = ops.mean(ops.sqrt(ops.square(diff) + self.epsilon**2), axis=(1, 2, 3))
        if self.ssim_weight:
            structural = tf.image.ssim(tf.clip_by_value(y_pred, 0.0, 1.0), y_true, max_val=1.0)
            loss = loss + self.ssim_weight * (1.0 - structural)
        if self.exposure_weight:
            mean_error = ops.mean(y_pred, axis=(1, 2)) - ops.mean(y_true, axis=(1, 2))
            loss = loss + self.exposure_weight * ops.mean(ops.abs(mean_error), axis=-1)
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "ssim_weight": self.ssim_weight,
            "exposure_weight": self.exposure_weight,
            "pixel": self.pixel,
        }


def describe_loss(ssim_weight: float, exposure_weight: float, pixel: str = DEFAULT_PIXEL_LOSS) -> str:
    """The loss as a model card states it."""
    terms = [pixel]
    if ssim_weight:
        terms.append(f"{ssim_weight:g} * (1 - SSIM)")
    if exposure_weight:
        terms.append(f"{exposure_weight:g} * |mean colour error|")
    return " + ".join(terms)
