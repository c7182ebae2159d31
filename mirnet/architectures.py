"""The networks, chosen by name with keyword arguments (BasicSR style): ``build_model("mirnet-refined")``.

``mirnet-refined`` is what ships (``mirnet/weights/default.keras``; docs/MODEL.md)::

    low_light ─► StackViews(views) ─► body ─► (+ the copies) ─► enhanced_views
    enhanced_views ─► AverageViews ─► enhanced        the body's output: its views' average
    enhanced_views ─► SpreadViews ──► views_spread    where the views disagree
    body features ──► FirstView(refine_views)         what the body saw, in the views the refinement runs on
    refinement(low_light, enhanced, views_spread, features) ─► refined_views    the output

- the body: MIRNet's recursive residual groups (Zamir et al., ECCV 2020; :mod:`mirnet.layers`) on a ``fold x fold``
  space-to-depth fold, adding a residual to the image (a global skip);
- the test-time views inside the network (:mod:`mirnet.views`): the body runs on ``views`` mirrored copies as one
  batch and their outputs, flipped back, are averaged;
- the refinement (:mod:`mirnet.refinement`): full-resolution convolutions with a multi-scale context, run on the
  first ``refine_views`` of those views, that add a zero-mean correction.

``mirnet`` (the full MIRNet) and ``mirnet-lite`` (the seed's, with plain residual blocks) are the body alone at
full resolution. Every argument is structural; each architecture's defaults are its builder's.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import keras
from keras import layers

from mirnet.layers import PixelShuffle, PixelUnshuffle, RecursiveResidualGroup
from mirnet.refinement import refinement
from mirnet.views import VIEW_FLIPS, AverageViews, FirstView, SpreadViews, StackViews


def body(channels: int, groups: int, blocks: int, block: str, fold: int = 1) -> Callable[[Any], tuple[Any, Any]]:
    """MIRNet's body as a function of its input -> (the residual it adds to the input, its last features).

    Fold (space to depth, ``fold`` > 1), a head convolution, ``groups`` recursive residual groups of ``blocks``
    blocks each, a tail convolution back to RGB (per folded pixel) and the unfold. The tail and unfold compute in
    float32: under bf16 the residual is added to the image in float32, which bf16 would round to 8 mantissa bits.
    The last features (after the groups, ``channels`` at 1/``fold`` of the resolution) feed the refinement.
    """
    head = layers.Conv2D(channels, 3, padding="same", name="head")
    residual_groups = [RecursiveResidualGroup(channels, blocks, block, name=f"group_{i + 1}") for i in range(groups)]
    tail = layers.Conv2D(3 * fold * fold, 3, padding="same", dtype="float32", name="tail")

    def residual(x: Any) -> tuple[Any, Any]:
        if fold > 1:
            x = PixelUnshuffle(fold, name="fold")(x)
        x = head(x)
        for group in residual_groups:
            x = group(x)
        features = x
        x = tail(x)
        if fold > 1:
            x = PixelShuffle(fold, dtype="float32", name="unfold")(x)
        return x, features

    return residual


def _plain(name: str, block: str, channels: int, groups: int, blocks: int) -> keras.Model:
    """The body on the image at full resolution, plus the image."""
    inputs = keras.Input(shape=(None, None, 3), name="low_light")
    residual, _ = body(channels, groups, blocks, block)(inputs)
    return keras.Model(inputs, layers.Add(dtype="float32", name="enhanced")([inputs, residual]), name=name)


def mirnet(channels: int = 64, groups: int = 3, blocks: int = 2) -> keras.Model:
    """The full MIRNet: groups of multi-scale residual blocks (3 streams, dual attention, selective kernel fusion)."""
    return _plain("mirnet", "multi_scale", channels, groups, blocks)


def mirnet_lite(channels: int = 64, groups: int = 3, blocks: int = 2) -> keras.Model:
    """The seed's simplified MIRNet: groups of 3x3 convolution + ReLU residual blocks (446,659 parameters)."""
    return _plain("mirnet_lite", "residual_conv", channels, groups, blocks)


def mirnet_refined(
    channels: int = 32, groups: int = 2, blocks: int = 1, fold: int = 4, views: int = 4, refine_views: int = 2
) -> keras.Model:
    """What ships: MIRNet blocks on a space-to-depth fold, test-time views inside, a full-resolution refinement.

    The body runs on a ``fold x fold`` fold and on ``views`` mirrored copies; the refinement on ``refine_views`` of
    them.

    ``views`` and ``refine_views`` change how the network runs, not its weights (inference may choose fewer, as the
    card's fp32 fallback does). With the refinement untrained (every part starts at zero) the network computes
    exactly the average of its body's views.
    """
    if views not in VIEW_FLIPS:
        raise ValueError(f"views must be one of {sorted(VIEW_FLIPS)}, not {views}")
    if not 1 <= refine_views <= views:
        raise ValueError(f"refine_views must be one of 1 to views ({views}), not {refine_views}")
    inputs = keras.Input(shape=(None, None, 3), name="low_light")
    # Float32 like the image it copies: it is added back to the body's residual.
    stacked = StackViews(views, dtype="float32", name="views")(inputs)
    residual, features = body(channels, groups, blocks, "multi_scale", fold)(stacked)
    enhanced_views = layers.Add(dtype="float32", name="enhanced_views")([stacked, residual])
    enhanced = AverageViews(views, dtype="float32", name="enhanced")(enhanced_views)
    spread = SpreadViews(views, dtype="float32", name="views_spread")(enhanced_views)
    features = FirstView(views, refine_views, name="body_features_first_view")(features)
    outputs = refinement(inputs, enhanced, spread, features, fold, refine_views)
    return keras.Model(inputs, outputs, name="mirnet_refined")


@dataclass(frozen=True)
class Architecture:
    """How to build a network, and what inference must know about it."""

    build: Callable[..., keras.Model]
    size_multiple: Callable[[dict[str, Any]], int]
    # Pixels each way that one output pixel sees; None where it sees the whole image (global pooling).
    receptive_radius: Callable[[dict[str, Any]], int | None]
    defaults: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        parameters = inspect.signature(self.build).parameters.values()
        object.__setattr__(self, "defaults", {p.name: p.default for p in parameters})

    @property
    def description(self) -> str:
        return inspect.getdoc(self.build).split("\n")[0]


ARCHITECTURES: dict[str, Architecture] = {
    # Channel attention and fusion pool globally: every output pixel sees the whole image. The multi-scale blocks
    # go down to 1/4 of their input's resolution, which the fold divides by ``fold`` more.
    "mirnet-refined": Architecture(mirnet_refined, lambda kw: 4 * kw["fold"], lambda kw: None),
    "mirnet": Architecture(mirnet, lambda kw: 4, lambda kw: None),
    # One pixel per 3x3 convolution: head, tail, and (in, blocks..., out) per group.
    "mirnet-lite": Architecture(mirnet_lite, lambda kw: 1, lambda kw: 2 + kw["groups"] * (kw["blocks"] + 2)),
}

# Arguments that change how a network runs but not its weights: a network trained with any value of them runs with
# any other.
INFERENCE_ONLY_ARGUMENTS = ("views", "refine_views")


def resolve_arguments(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """The architecture's defaults overlaid with ``arguments``; unknown names are an error."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}")
    defaults = ARCHITECTURES[name].defaults
    arguments = dict(arguments or {})
    unknown = set(arguments) - set(defaults)
    if unknown:
        raise ValueError(f"{name} takes {sorted(defaults)}, not {sorted(unknown)}")
    return {**defaults, **arguments}


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
