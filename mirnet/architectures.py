"""Networks chosen by name with keyword arguments (BasicSR style): ``build_model("mirnet-lite", channels=32)``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf
from keras import layers

from mirnet.global_statistics import spatial_mean
from mirnet.layers import PACKAGE, RecursiveResidualGroup


class _FactorLayer(layers.Layer):
    """A weightless layer configured by one integer, ``factor``."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelUnshuffle(_FactorLayer):
    """Folds ``factor x factor`` pixel blocks into channels, so the body runs at a lower resolution."""

    def call(self, inputs):
        return tf.nn.space_to_depth(inputs, self.factor)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelShuffle(_FactorLayer):
    """The inverse of :class:`PixelUnshuffle`."""

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.factor)


# Test-time self-ensemble (the Enhancer's views, and ``body_views`` inside the network): the axes (of N x H x W x C)
# each view mirrors before the body and back after it.
VIEW_FLIPS: dict[int, list[list[int]]] = {1: [[]], 2: [[], [2]], 3: [[], [2], [1]], 4: [[], [2], [1], [1, 2]]}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Mirror(layers.Layer):
    """Flips images along ``axes`` (1: up-down, 2: left-right); its own inverse."""

    def __init__(self, axes: list[int], **kwargs):
        super().__init__(**kwargs)
        self.axes = list(axes)

    def call(self, inputs):
        return tf.reverse(inputs, self.axes)

    def get_config(self):
        return {**super().get_config(), "axes": self.axes}


class _ViewsLayer(layers.Layer):
    """A weightless layer between an image batch and its batch of ``views`` mirrored copies; the batch size is the
    only dimension it changes."""

    def __init__(self, views: int, **kwargs):
        super().__init__(**kwargs)
        self.views = views

    def compute_output_shape(self, input_shape):
        return (None, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "views": self.views}

    def grouped(self, inputs):
        """A batch stacked by :class:`StackViews` as images x views x H x W x C (the copies as they lie)."""
        shape = tf.shape(inputs)
        return tf.reshape(inputs, [-1, self.views, shape[1], shape[2], inputs.shape[-1]])

    def views_back(self, inputs) -> list:
        """A batch stacked by :class:`StackViews` as one tensor per view, each flipped back, in view order."""
        grouped = self.grouped(inputs)
        return [
            tf.reverse(grouped[:, index], axes) if axes else grouped[:, index]
            for index, axes in enumerate(VIEW_FLIPS[self.views])
        ]


@keras.saving.register_keras_serializable(package=PACKAGE)
class StackViews(_ViewsLayer):
    """N x H x W x C -> (N * views) x H x W x C: each image followed by its mirrored copies (:data:`VIEW_FLIPS`), so
    that one pass of the body runs every view as one batch. Image-major, so an image's views sit together: the order
    in which the spatial means recorded on a whole image stack up for its tiles."""

    def call(self, inputs):
        copies = [tf.reverse(inputs, axes) if axes else inputs for axes in VIEW_FLIPS[self.views]]
        shape = tf.shape(inputs)
        return tf.reshape(tf.stack(copies, axis=1), [-1, shape[1], shape[2], inputs.shape[-1]])


@keras.saving.register_keras_serializable(package=PACKAGE)
class AverageViews(_ViewsLayer):
    """The way back from :class:`StackViews`: each image's views flipped back and averaged, in view order."""

    def call(self, inputs):
        total = None
        for view in self.views_back(inputs):
            total = view if total is None else total + view
        return total / self.views


@keras.saving.register_keras_serializable(package=PACKAGE)
class FirstView(_ViewsLayer):
    """Of a batch stacked by :class:`StackViews`, each image's first view (the image as it came, not mirrored), or
    with ``count`` > 1 its first ``count`` views, still stacked image-major: the batch :class:`StackViews` of
    ``count`` views would make (:data:`VIEW_FLIPS` of fewer views are the first of more)."""

    def __init__(self, views: int, count: int = 1, **kwargs):
        super().__init__(views, **kwargs)
        if not 1 <= count <= views:
            raise ValueError(f"count must be between 1 and views ({views}), not {count}")
        self.count = count

    def call(self, inputs):
        if self.count == 1:
            return self.grouped(inputs)[:, 0]
        first = self.grouped(inputs)[:, : self.count]
        shape = tf.shape(inputs)
        return tf.reshape(first, [-1, shape[1], shape[2], inputs.shape[-1]])

    def get_config(self):
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpreadViews(_ViewsLayer):
    """Beside :class:`AverageViews`: the standard deviation of each image's views, flipped back, per pixel and
    channel: where the body's mirrored copies disagree (zero for one view)."""

    def call(self, inputs):
        return tf.math.reduce_std(tf.stack(self.views_back(inputs), axis=1), axis=1)


def _body(prefix: str, num_rrg: int, num_mrb: int, channels: int, block: str, fold: int) -> Callable[..., Any]:
    """The residual that the body adds to its input: fold, head, residual groups, tail, unfold. Its layers are
    named ``prefix`` + the plain network's names, so a second body (the anchor) can sit beside the first. The
    residual comes with the body's last features (after its groups, before the tail: ``channels`` at 1/``fold`` of
    the resolution)."""
    folding = PixelUnshuffle(fold, name=f"{prefix}fold") if fold > 1 else None
    head = layers.Conv2D(channels, 3, padding="same", name=f"{prefix}head")
    groups = [RecursiveResidualGroup(channels, num_mrb, block, name=f"{prefix}group_{i + 1}") for i in range(num_rrg)]
    tail = layers.Conv2D(3 * fold * fold, 3, padding="same", dtype="float32", name=f"{prefix}tail")
    unfolding = PixelShuffle(fold, name=f"{prefix}unfold", dtype="float32") if fold > 1 else None

    def residual(x) -> tuple[Any, Any]:
        """-> (the residual, the body's last features)."""
        x = folding(x) if folding else x
        x = head(x)
        for group in groups:
            x = group(x)
        features = x
        x = tail(x)
        return (unfolding(x) if unfolding else x), features

    return residual


def _residual_network(
    name: str,
    num_rrg: int,
    num_mrb: int,
    channels: int,
    block: str,
    fold: int,
    refine: int = 0,
    refine_keeps_mean: bool = False,
    refine_fold: int = 1,
    body_views: int = 1,
    anchor: bool = False,
    refine_blocks: int = 0,
    refine_context: int = 0,
    refine_context_groups: int = 1,
    refine_spread: bool = False,
    refine_context_features: bool = False,
    refine_features: bool = False,
    refine_context_to_path: bool = False,
    refine_views_features: bool = False,
    refine_views: int = 1,
) -> keras.Model:
    """Head convolution, residual groups, tail convolution, plus the input (a global residual).

    The tail and the global addition always compute in float32: under bf16 the input image itself would
    otherwise be rounded to 8 mantissa bits before it is added back. With ``refine`` channels, a full-resolution
    refinement follows (:func:`_refinement`). With ``body_views`` > 1 the body (everything before the refinement)
    runs on that many mirrored copies of the input (:data:`VIEW_FLIPS`), sharing its weights, and their outputs,
    flipped back, are averaged: the test-time views inside the network, so that the refinement runs once, on the
    average, instead of once per view. With ``anchor`` a second body of the same shape (layers named ``anchor_*``,
    one view, no refinement) runs on the input, and the output is scaled per channel to that body's mean colour
    (:class:`MatchMeanColour`): one network chooses each image's brightness, the other its detail. With
    ``refine_spread`` the refinement also sees where the views disagree (:class:`SpreadViews`). With
    ``refine_context_features`` the context also sees the body's last features on the image as it came (its first
    view, :class:`FirstView`); with ``refine_features`` the refinement's full-resolution path sees them too, and with
    ``refine_context_to_path`` it also sees the context's last features; with ``refine_views_features`` it also
    sees the body's last features averaged over all views, each flipped back (:class:`AverageViews`).

    With ``refine_views`` > 1 the refinement (and its context) runs on that many of the body's views, as one batch:
    each on the body's average and the input mirrored as that view is, with the body's features of that view (which
    the body has computed already); their refined images, flipped back, are averaged. Test-time views for the
    refinement, at the cost of one more refinement per view; the weights are the same for any number.
    """
    inputs = keras.Input(shape=(None, None, 3), name="low_light")
    residual = _body("", num_rrg, num_mrb, channels, block, fold)

    spread = views_features = None
    if body_views == 1:
        body_residual, features = residual(inputs)
        views_features = features
        outputs = layers.Add(dtype="float32", name="enhanced")([inputs, body_residual])
        if refine_spread:
            spread = SpreadViews(1, dtype="float32", name="views_spread")(outputs)
    else:
        if body_views not in VIEW_FLIPS:
            raise ValueError(f"body_views must be one of {sorted(VIEW_FLIPS)}, not {body_views}")
        # One pass of the body on all views as one batch (float32, like the input it mirrors: it is added back to
        # the body's output); networks saved before this ran one pass per view (Mirror, Add, Average), which load
        # and compute the same.
        mirrored = StackViews(body_views, dtype="float32", name="views")(inputs)
        body_residual, features = residual(mirrored)
        enhanced = layers.Add(dtype="float32", name="enhanced_views")([mirrored, body_residual])
        if refine_views_features:
            views_features = AverageViews(body_views, name="body_features_views_average")(features)
        if refine_context_features or refine_features:
            features = FirstView(body_views, refine_views, name="body_features_first_view")(features)
        outputs = AverageViews(body_views, dtype="float32", name="enhanced")(enhanced)
        if refine_spread:
            spread = SpreadViews(body_views, dtype="float32", name="views_spread")(enhanced)
    if refine:
        context = None
        if refine_context:
            context = _context(refine_context, fold, refine_context_groups, with_features=refine_context_features)
        refined_inputs = inputs
        if refine_views > 1:
            refined_inputs = StackViews(refine_views, dtype="float32", name="refine_views_inputs")(inputs)
            outputs = StackViews(refine_views, dtype="float32", name="refine_views_enhanced")(outputs)
            if spread is not None:
                spread = StackViews(refine_views, dtype="float32", name="refine_views_spread")(spread)
        outputs = _refinement(
            refined_inputs,
            outputs,
            refine,
            refine_keeps_mean,
            refine_fold,
            refine_blocks,
            context,
            spread,
            features if refine_context_features else None,
            (features, fold) if refine_features else None,
            fold if refine_context_to_path else None,
            (views_features, fold) if refine_views_features else None,
        )
        if refine_views > 1:
            outputs = AverageViews(refine_views, dtype="float32", name="refined_views")(outputs)
    if anchor:
        anchor_residual = _body(ANCHOR_PREFIX, num_rrg, num_mrb, channels, block, fold)
        anchored = layers.Add(dtype="float32", name=f"{ANCHOR_PREFIX}enhanced")([inputs, anchor_residual(inputs)[0]])
        outputs = MatchMeanColour(dtype="float32", name="anchored")([outputs, anchored])
    return keras.Model(inputs, outputs, name=name)


ANCHOR_PREFIX = "anchor_"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MatchMeanColour(layers.Layer):
    """``[image, anchor]`` -> the image scaled per channel so that its mean colour is the anchor's.

    Both means go through :func:`spatial_mean` (image first, then anchor), so the tiles of a large image take the
    whole image's, recorded in one pass, like every other global average. A channel whose mean is zero (an all-black
    output) is left at zero rather than divided by it.
    """

    def call(self, inputs):
        image, anchor = inputs
        image_mean = spatial_mean(image)
        anchor_mean = spatial_mean(anchor)
        return image * anchor_mean / keras.ops.maximum(image_mean, 1e-6)


@keras.saving.register_keras_serializable(package=PACKAGE)
class RemoveMean(layers.Layer):
    """Subtracts each image's mean per channel (through :func:`spatial_mean`, so tiles share the whole image's)."""

    def call(self, inputs):
        return inputs - spatial_mean(inputs)


def _context(channels: int, fold: int, groups: int = 1, with_features: bool = False) -> Callable[..., Any]:
    """A small multi-scale network beside the refinement, for corrections that need the scene around a pixel.

    The refinement's 3x3 filters reach a few pixels (31 with three blocks); this sees the body's output and the dark
    input folded ``fold x fold`` into channels, through a head, one multi-scale residual block of ``channels`` (three
    streams, down to 1/4 of its input's resolution, dual attention, selective kernel fusion) and a tail that starts
    at zero, unfolded to a correction the refinement adds to its own. Like the blocks, it starts as nothing, so a
    network grown from trained weights without it computes what they did.

    With ``groups`` > 1 the block is followed by more residual groups of one block each, named
    ``refine_context_group_2``, ... that start as the identity: a context grown deeper from a trained one starts
    out computing what it did.

    With ``with_features``, the correction also takes the body's last features (at the resolution of its folded
    input), through a 3x3 convolution of its own that starts at zero, added to its head's output: a context grown
    from a trained one starts out computing what it did.
    """
    folding = PixelUnshuffle(fold, name="refine_context_fold")
    head = layers.Conv2D(channels, 3, padding="same", name="refine_context_head")
    group_layers = [RecursiveResidualGroup(channels, 1, "multi_scale", name="refine_context_group")]
    group_layers += [
        RecursiveResidualGroup(channels, 1, "multi_scale", starts_as_identity=True, name=f"refine_context_group_{i}")
        for i in range(2, groups + 1)
    ]

    def group(x):
        for layer in group_layers:
            x = layer(x)
        return x

    tail = layers.Conv2D(
        3 * fold * fold, 3, padding="same", kernel_initializer="zeros", dtype="float32", name="refine_context_tail"
    )
    unfolding = PixelShuffle(fold, dtype="float32", name="refine_context_unfold")

    features_conv = None
    if with_features:
        features_conv = layers.Conv2D(
            channels, 3, padding="same", use_bias=False, kernel_initializer="zeros", name="refine_context_features"
        )

    def correction(x, features: Any | None = None) -> tuple[Any, Any]:
        """-> (the correction, the context's last features: ``channels`` at 1/``fold`` of the image)."""
        x = head(folding(x))
        if features_conv is not None:
            if features is None:
                raise ValueError("this context was built to see the body's features; none were given")
            x = layers.Add(name="refine_context_with_features")([x, features_conv(features)])
        x = group(x)
        return unfolding(tail(x)), x

    return correction


# The views' spread is about 0.01 on LOL (0.006 to 0.014 per image, v12 on validation): scaled into an image's range,
# so that a convolution that starts at zero reaches useful weights at the learning rates the refinement trains at.
SPREAD_SCALE = 32.0


def _unfolded_to_path(features: Any, channels: int, scale: int, name: str) -> Any:
    """Features at 1/``scale`` of the refinement's resolution, through a 3x3 convolution ``name`` that starts at zero
    (no bias) to ``channels`` for each pixel of a ``scale x scale`` block, unfolded (``name`` + ``_unfold``) to the
    refinement's resolution: an input that a refinement grown from trained weights without it starts out ignoring."""
    y = layers.Conv2D(
        channels * scale * scale, 3, padding="same", use_bias=False, kernel_initializer="zeros", name=name
    )(features)
    return PixelShuffle(scale, name=f"{name}_unfold")(y) if scale > 1 else y


def _refinement(
    inputs: Any,
    enhanced: Any,
    channels: int,
    keeps_mean: bool = False,
    fold: int = 1,
    blocks: int = 0,
    context: Callable[..., Any] | None = None,
    spread: Any | None = None,
    context_features: Any | None = None,
    body_features: tuple[Any, int] | None = None,
    context_to_path: int | None = None,
    views_features: tuple[Any, int] | None = None,
):
    """Three 3x3 convolutions at full resolution (or on folded blocks, below) that see the dark input beside the
    body's output and add a correction to it.

    A body that folds 4x4 pixels into channels sees each block's 48 values through its head's ``channels``
    filters; this refinement sees every pixel. Its last convolution starts at zero, so a network grown from
    trained weights without it (``init_from``) starts out computing exactly what those weights did. Its
    receptive field is 3 pixels each way, so it cannot choose one scene's brightness apart from another's, but as a
    function of each pixel's values it can apply one learned tone curve to all. With ``keeps_mean`` its correction
    has a mean of zero over each image and channel: the body's output keeps its mean colour.

    With ``fold`` > 1 the convolutions run on ``fold x fold`` pixel blocks folded into channels (each still sees
    every pixel of its block): the same reach in pixels costs ``fold`` times fewer 3x3 steps, so at about the
    arithmetic of the full-resolution version a refinement can be wider and see ``fold`` times as far.

    With ``blocks`` > 0, that many residual blocks follow the second convolution, each two 3x3 convolutions dilated
    by 2, 4, 8, ... (block 1, 2, 3, ...), so that the refinement sees further while keeping the pixel grid: two
    blocks take its reach from 3 to 15 pixels each way. A block's second convolution starts at zero, so the blocks
    start as the identity and a refinement grown from trained weights without them computes what it did.

    With ``context`` (:func:`_context`), its correction is added to this one's before the mean is removed; the
    context also sees ``context_features`` (the body's, when it was built to).

    With ``spread`` (the views' standard deviation, :class:`SpreadViews`), the first convolution also sees where the
    body's views disagree, scaled by :data:`SPREAD_SCALE` to the range of an image, through a convolution of its own
    that starts at zero (added before the first activation), so a refinement grown from trained weights without it
    starts out computing what they did.

    With ``body_features`` (the body's last features and the fold they lie at, 1/fold of the image), the path also
    takes them after its second convolution: a 3x3 convolution of its own that starts at zero, to ``channels`` for
    each pixel of a block, unfolded to the refinement's resolution and added, so that each pixel's correction sees
    what the body saw around it, and a refinement grown from trained weights without it computes what they did.

    With ``context_to_path`` (the fold the context works at, 1/``context_to_path`` of the image), the path also takes
    the context's last features, the same way: a 3x3 convolution of its own (``refine_from_context``) that starts at
    zero, to ``channels`` for each pixel of a block, unfolded and added after the second convolution (and the body's
    features), so that each pixel's correction sees what the context's multi-scale block made of the scene around it.

    With ``views_features`` (the body's last features averaged over its views, each flipped back, and their fold),
    the path takes those too, the same way (``refine_views_features``), after the context's: what the body saw
    around each pixel in all its mirrored copies, not only in the image as it came.
    """
    x = layers.Concatenate(name="refine_inputs")([enhanced, inputs])
    both = x
    context_correction = context_last = None
    if context is not None:
        context_correction, context_last = context(both, context_features)
    if fold > 1:
        x = PixelUnshuffle(fold, name="refine_fold")(x)
    if spread is None:
        x = layers.Conv2D(channels, 3, padding="same", activation="relu", name="refine_1")(x)
    else:
        s = layers.Rescaling(SPREAD_SCALE, name="refine_spread_scale")(spread)
        if fold > 1:
            s = PixelUnshuffle(fold, name="refine_spread_fold")(s)
        x = layers.Add(name="refine_1_with_spread")(
            [
                layers.Conv2D(channels, 3, padding="same", name="refine_1")(x),
                layers.Conv2D(
                    channels, 3, padding="same", use_bias=False, kernel_initializer="zeros", name="refine_spread"
                )(s),
            ]
        )
        x = layers.ReLU(name="refine_1_relu")(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="relu", name="refine_2")(x)
    inputs_to_path = {  # the name of the addition: (its convolution's name, the features and their fold, or None)
        "refine_2_with_features": ("refine_features", body_features),
        "refine_2_with_context": (
            "refine_from_context",
            None if context_to_path is None else (context_last, context_to_path),
        ),
        "refine_2_with_views_features": ("refine_views_features", views_features),
    }
    for addition, (name, given) in inputs_to_path.items():
        if given is not None:
            features, features_fold = given
            x = layers.Add(name=addition)([x, _unfolded_to_path(features, channels, features_fold // fold, name)])
    for index in range(1, blocks + 1):
        dilation = 2**index
        y = layers.Conv2D(
            channels, 3, padding="same", dilation_rate=dilation, activation="relu", name=f"refine_block_{index}a"
        )(x)
        y = layers.Conv2D(
            channels,
            3,
            padding="same",
            dilation_rate=dilation,
            kernel_initializer="zeros",
            name=f"refine_block_{index}b",
        )(y)
        x = layers.Add(name=f"refine_block_{index}")([x, y])
    x = layers.Conv2D(
        3 * fold * fold, 3, padding="same", kernel_initializer="zeros", dtype="float32", name="refine_out"
    )(x)
    if fold > 1:
        x = PixelShuffle(fold, dtype="float32", name="refine_unfold")(x)
    if context is not None:
        x = layers.Add(dtype="float32", name="refine_with_context")([x, context_correction])
    if keeps_mean:
        x = RemoveMean(dtype="float32", name="refine_zero_mean")(x)
    return layers.Add(dtype="float32", name="refined")([enhanced, x])


def _mirnet(
    num_rrg: int = 3,
    num_mrb: int = 2,
    channels: int = 64,
    fold: int = 1,
    refine: int = 0,
    refine_keeps_mean: bool = False,
    refine_fold: int = 1,
    body_views: int = 1,
    anchor: bool = False,
    refine_blocks: int = 0,
    refine_context: int = 0,
    refine_context_groups: int = 1,
    refine_spread: bool = False,
    refine_context_features: bool = False,
    refine_features: bool = False,
    refine_context_to_path: bool = False,
    refine_views_features: bool = False,
    refine_views: int = 1,
) -> keras.Model:
    if refine_views != 1:
        if not refine:
            raise ValueError("refine_views needs a refinement (refine > 0)")
        if refine_views not in VIEW_FLIPS or refine_views > body_views:
            raise ValueError(f"refine_views must be one of 1 to body_views ({body_views}), not {refine_views}")
        if refine_views_features:
            raise ValueError("refine_views > 1 does not take refine_views_features")
    parts_of_the_refinement = {
        "refine_blocks": refine_blocks,
        "refine_context": refine_context,
        "refine_spread": refine_spread,
        "refine_features": refine_features,
        "refine_views_features": refine_views_features,
    }
    parts_of_the_context = {
        "refine_context_features": refine_context_features,
        "refine_context_to_path": refine_context_to_path,
    }
    for argument, wanted in parts_of_the_refinement.items():
        if wanted and not refine:
            raise ValueError(f"{argument} needs a refinement (refine > 0)")
    for argument, wanted in parts_of_the_context.items():
        if wanted and not refine_context:
            raise ValueError(f"{argument} needs a context (refine_context > 0)")
    unfolded_to_path = {
        "refine_features": refine_features,
        "refine_context_to_path": refine_context_to_path,
        "refine_views_features": refine_views_features,
    }
    for argument, wanted in unfolded_to_path.items():
        if wanted and fold % refine_fold:
            raise ValueError(f"{argument} needs refine_fold {refine_fold} to divide the body's fold {fold}")
    if refine_context_groups < 1:
        raise ValueError(f"refine_context_groups must be at least 1, not {refine_context_groups}")
    if refine and (4 * fold) % refine_fold:
        raise ValueError(f"refine_fold {refine_fold} must divide the network's size multiple {4 * fold}")
    return _residual_network(
        "mirnet",
        num_rrg,
        num_mrb,
        channels,
        "multi_scale",
        fold,
        refine,
        refine_keeps_mean,
        refine_fold,
        body_views,
        anchor,
        refine_blocks,
        refine_context,
        refine_context_groups,
        refine_spread,
        refine_context_features,
        refine_features,
        refine_context_to_path,
        refine_views_features,
        refine_views,
    )


def _mirnet_lite(num_rrg: int = 3, num_mrb: int = 2, channels: int = 64) -> keras.Model:
    return _residual_network("mirnet_lite", num_rrg, num_mrb, channels, "residual_conv", 1)


@dataclass(frozen=True)
class Architecture:
    """How to build a network, and what inference must know about it."""

    build: Callable[..., keras.Model]
    defaults: dict[str, Any]
    description: str
    size_multiple: Callable[[dict[str, Any]], int]
    receptive_radius: Callable[[dict[str, Any]], int | None]


ARCHITECTURES: dict[str, Architecture] = {
    "mirnet": Architecture(
        build=_mirnet,
        defaults={
            "num_rrg": 3,
            "num_mrb": 2,
            "channels": 64,
            "fold": 1,
            "refine": 0,
            "refine_keeps_mean": False,
            "refine_fold": 1,
            "body_views": 1,
            "anchor": False,
            "refine_blocks": 0,
            "refine_context": 0,
            "refine_context_groups": 1,
            "refine_spread": False,
            "refine_context_features": False,
            "refine_features": False,
            "refine_context_to_path": False,
            "refine_views_features": False,
            "refine_views": 1,
        },
        description="full MIRNet: multi-scale residual blocks (3 streams, dual attention, selective kernel fusion)",
        size_multiple=lambda kw: 4 * kw.get("fold", 1),
        # Channel attention and fusion pool globally: every output pixel sees the whole image.
        receptive_radius=lambda kw: None,
    ),
    "mirnet-lite": Architecture(
        build=_mirnet_lite,
        defaults={"num_rrg": 3, "num_mrb": 2, "channels": 64},
        description="the seed's simplified MIRNet: residual groups of 3x3 conv + ReLU residual blocks",
        size_multiple=lambda kw: 1,
        # One pixel per 3x3 convolution: head, tail, and (in, blocks..., out) per group.
        receptive_radius=lambda kw: 2 + kw["num_rrg"] * (kw["num_mrb"] + 2),
    ),
}


# Arguments that change how a network runs but not its weights: a network trained with any value of them runs with
# any other (``scripts/package_model.py inference --refine-views`` ships trained weights with another).
INFERENCE_ONLY_ARGUMENTS = ("refine_views",)


def resolve_arguments(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """The architecture's defaults overlaid with ``arguments``; unknown names are an error."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}")
    arch = ARCHITECTURES[name]
    arguments = dict(arguments or {})
    unknown = set(arguments) - set(arch.defaults)
    if unknown:
        raise ValueError(f"{name} takes {sorted(arch.defaults)}, not {sorted(unknown)}")
    return {**arch.defaults, **arguments}


@contextlib.contextmanager
def dtype_policy(policy: str) -> Iterator[None]:
    """Build layers under ``policy`` ("float32" or "mixed_bfloat16") and restore the global policy after."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_model(name: str, policy: str = "float32", **arguments: Any) -> keras.Model:
    """Build the architecture ``name`` with ``arguments`` over its defaults."""
    resolved = resolve_arguments(name, arguments)
    with dtype_policy(policy):
        return ARCHITECTURES[name].build(**resolved)
