"""The full-resolution refinement of ``mirnet-refined``, with its multi-scale context.

The body sees each 4x4 block of pixels folded into channels; the refinement sees every pixel. It takes the dark
input beside the body's output (the average of the body's views), where those views disagree (their spread), the
body's last features and the last features of a small multi-scale context, and adds a correction with a mean of zero
over each image and channel: it moves detail, and the body keeps choosing each image's colour and brightness.

The network grew these parts one at a time from trained weights (docs/HISTORY.md). Each part's last convolution
starts at zero, so a refinement that has not trained (or a part frozen at its initial value) changes nothing: the
network computes exactly the average of its body's views. Layer names are those of the shipped weight files.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from mirnet.global_statistics import spatial_mean
from mirnet.layers import PACKAGE, PixelShuffle, PixelUnshuffle, RecursiveResidualGroup
from mirnet.views import AverageViews, StackViews

# The refinement's width at full resolution, and the context's at 1/fold of it.
REFINE_CHANNELS = 16
CONTEXT_CHANNELS = 16
# Residual blocks after the second convolution, dilated by 2, 4, 8: the refinement's reach grows from 3 to 31 pixels
# each way while it keeps the pixel grid.
DILATED_BLOCKS = 3
# The views' spread is about 0.01 on LOL (0.006 to 0.014 per image): scaled into an image's range, so that a
# convolution that starts at zero reaches useful weights at the learning rates the refinement trains at.
SPREAD_SCALE = 32.0


@keras.saving.register_keras_serializable(package=PACKAGE)
class RemoveMean(layers.Layer):
    """Subtracts each image's mean per channel (through :func:`spatial_mean`, so tiles share the whole image's)."""

    def call(self, inputs):
        return inputs - spatial_mean(inputs)


def _zero_conv(filters: int, name: str, dtype: str | None = None, use_bias: bool = True) -> layers.Conv2D:
    """A 3x3 convolution that starts at zero: the last of a part that must change nothing until it trains."""
    return layers.Conv2D(
        filters, 3, padding="same", use_bias=use_bias, kernel_initializer="zeros", dtype=dtype, name=name
    )


def unfolded_to_path(features: Any, fold: int, name: str) -> Any:
    """Features at 1/``fold`` of the refinement's resolution, through a convolution ``name`` that starts at zero to
    :data:`REFINE_CHANNELS` for each pixel of a ``fold x fold`` block, unfolded to full resolution (``name_unfold``),
    so that each pixel's correction sees what the features saw around it."""
    x = _zero_conv(REFINE_CHANNELS * fold * fold, name, use_bias=False)(features)
    return PixelShuffle(fold, name=f"{name}_unfold")(x)


def context(images: Any, body_features: Any, fold: int) -> tuple[Any, Any]:
    """A small multi-scale network beside the refinement, for corrections that need the scene around a pixel.

    It sees the refinement's inputs folded ``fold x fold`` into channels and, through a convolution that starts at
    zero, the body's last features; then one MIRNet group of one multi-scale residual block (three streams down to
    1/4 of its resolution, dual attention, selective kernel fusion), and a tail that starts at zero, unfolded.
    -> (its correction at full resolution, its last features at 1/``fold``).
    """
    x = PixelUnshuffle(fold, name="refine_context_fold")(images)
    x = layers.Conv2D(CONTEXT_CHANNELS, 3, padding="same", name="refine_context_head")(x)
    seen = _zero_conv(CONTEXT_CHANNELS, "refine_context_features", use_bias=False)(body_features)
    x = layers.Add(name="refine_context_with_features")([x, seen])
    x = RecursiveResidualGroup(CONTEXT_CHANNELS, 1, "multi_scale", name="refine_context_group")(x)
    correction = _zero_conv(3 * fold * fold, "refine_context_tail", dtype="float32")(x)
    return PixelShuffle(fold, dtype="float32", name="refine_context_unfold")(correction), x


def _dilated_block(x: Any, index: int) -> Any:
    """Two 3x3 convolutions dilated by 2**``index``, plus the input; the second starts at zero (the identity)."""
    dilation = 2**index
    y = layers.Conv2D(
        REFINE_CHANNELS, 3, padding="same", dilation_rate=dilation, activation="relu", name=f"refine_block_{index}a"
    )(x)
    y = layers.Conv2D(
        REFINE_CHANNELS, 3, padding="same", dilation_rate=dilation, kernel_initializer="zeros",
        name=f"refine_block_{index}b",
    )(y)  # fmt: skip
    return layers.Add(name=f"refine_block_{index}")([x, y])


def refinement(inputs: Any, enhanced: Any, spread: Any, body_features: Any, fold: int, views: int) -> Any:
    """The refined image: ``enhanced`` (the body's average) plus a zero-mean correction, run on ``views`` mirrored
    copies as one batch and averaged back (test-time views for the refinement; the weights are the same for any
    count).

    ``inputs`` is the dark image, ``spread`` the body's views' standard deviation (:class:`SpreadViews`),
    ``body_features`` the body's last features of its first ``views`` views (at 1/``fold``, :class:`FirstView`).
    The path: a first convolution on the image and the body's output, plus the scaled spread through a convolution
    of its own; a second; the body's and the context's features unfolded and added; the dilated blocks; a last
    convolution to a correction, plus the context's; its mean removed.
    """
    inputs = StackViews(views, dtype="float32", name="refine_views_inputs")(inputs)
    enhanced = StackViews(views, dtype="float32", name="refine_views_enhanced")(enhanced)
    spread = StackViews(views, dtype="float32", name="refine_views_spread")(spread)
    images = layers.Concatenate(name="refine_inputs")([enhanced, inputs])
    context_correction, context_features = context(images, body_features, fold)

    x = layers.Conv2D(REFINE_CHANNELS, 3, padding="same", name="refine_1")(images)
    spread = layers.Rescaling(SPREAD_SCALE, name="refine_spread_scale")(spread)
    x = layers.Add(name="refine_1_with_spread")(
        [x, _zero_conv(REFINE_CHANNELS, "refine_spread", use_bias=False)(spread)]
    )
    x = layers.ReLU(name="refine_1_relu")(x)
    x = layers.Conv2D(REFINE_CHANNELS, 3, padding="same", activation="relu", name="refine_2")(x)
    x = layers.Add(name="refine_2_with_features")([x, unfolded_to_path(body_features, fold, "refine_features")])
    x = layers.Add(name="refine_2_with_context")([x, unfolded_to_path(context_features, fold, "refine_from_context")])
    for index in range(1, DILATED_BLOCKS + 1):
        x = _dilated_block(x, index)
    x = _zero_conv(3, "refine_out", dtype="float32")(x)
    x = layers.Add(dtype="float32", name="refine_with_context")([x, context_correction])
    x = RemoveMean(dtype="float32", name="refine_zero_mean")(x)
    refined = layers.Add(dtype="float32", name="refined")([enhanced, x])
    return AverageViews(views, dtype="float32", name="refined_views")(refined)
