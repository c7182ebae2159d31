"""Whole-image and tiled inference, batching tiles across images.

Images are float32 H x W x 3 in [0, 1]. Each is reflect-padded to the size the network needs, cut into
overlapping windows (or kept whole when it fits one tile), windows of the same shape from any of the images
run through the network together, and the blended result is cropped back and clamped to [0, 1].

A network that averages over its whole input (the full MIRNet's attention and fusion) makes each tile judge its
exposure alone. So a tiled image first runs whole, downscaled to at most ``context`` pixels on its longer side,
with its global averages recorded (``mirnet.global_statistics``); its tiles then run with those averages in place
of their own, and agree with each other and with the whole-image result.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from mirnet.architectures import ARCHITECTURES, build_model, resolve_arguments
from mirnet.choices import (
    AUTO_PRECISION,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONTEXT,
    DEFAULT_PRECISION,
    DEFAULT_TILE,
    DEFAULT_VIEWS,
    INFERENCE_PRECISIONS,
    PRECISIONS,
    cpu_has_bf16,
)
from mirnet.global_statistics import recording, replaying
from mirnet.models import LoadedModel
from mirnet.tiling import Window, plan_windows
from mirnet.views import VIEW_FLIPS

# For networks whose receptive field is global (the full MIRNet pools over the whole input in its attention and
# fusion), tiles cannot equal the whole-image result: tile only what is too large to run whole.
DEFAULT_MARGIN = 64


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Reflect-pad bottom and right so both sides are multiples of ``multiple``."""
    height, width = image.shape[:2]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    # NumPy reflects repeatedly when the pad is longer than the side, and repeats a 1-pixel side.
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")


@dataclass
class _Canvas:
    """Accumulates the weighted tiles of one image."""

    height: int
    width: int
    padded: np.ndarray
    windows: list[Window]
    # Per view, the network's global averages over the whole image (each 1 x 1 x 1 x C), when its tiles share them.
    statistics: list[list[np.ndarray]] | None = None
    total: np.ndarray = field(init=False)
    weight: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.total = np.zeros(self.padded.shape, np.float32)
        self.weight = np.zeros(self.padded.shape[:2], np.float32)

    def add(self, window: Window, output: np.ndarray) -> None:
        rows = slice(window.top, window.top + window.height)
        cols = slice(window.left, window.left + window.width)
        self.total[rows, cols] += output * window.weights[..., None]
        self.weight[rows, cols] += window.weights

    def result(self) -> np.ndarray:
        blended = self.total / self.weight[..., None]
        return np.clip(blended[: self.height, : self.width], 0.0, 1.0)


def gpu_present() -> bool:
    """Whether TensorFlow sees a GPU here."""
    return bool(tf.config.list_physical_devices("GPU"))


def native_bf16() -> bool:
    """Whether this machine computes bfloat16 natively: a GPU, or a CPU with AVX-512 BF16 or AMX."""
    return cpu_has_bf16() or gpu_present()


def bf16_probe_ratio(repeats: int = 5) -> float:
    """Seconds in bfloat16 over seconds in float32 for two 3x3 convolutions of 32 channels on a batch of four
    100x152 maps (the body's work on a 600x400 image's views), each the best of ``repeats``, taken in turns so
    that a noisy moment hits both. Under 1 where bf16 is faster here."""
    rng = np.random.default_rng(0)
    inputs = rng.random((4, 100, 152, 32), dtype=np.float32)
    kernel = rng.normal(scale=0.1, size=(3, 3, 32, 32)).astype(np.float32)

    def timer(dtype: tf.DType) -> Callable[[], float]:
        x, w = tf.constant(inputs, dtype), tf.constant(kernel, dtype)
        pair = tf.function(lambda x: tf.nn.relu(tf.nn.conv2d(tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME")), w, 1, "SAME")))
        pair(x)  # traced and warmed up

        def seconds() -> float:
            start = time.perf_counter()
            pair(x).numpy()
            return time.perf_counter() - start

        return seconds

    bf16, fp32 = timer(tf.bfloat16), timer(tf.float32)
    best = {"bf16": float("inf"), "fp32": float("inf")}
    for _ in range(repeats):
        best["bf16"] = min(best["bf16"], bf16())
        best["fp32"] = min(best["fp32"], fp32())
    return best["bf16"] / best["fp32"]


def bf16_pays(
    gpu: Callable[[], bool] = gpu_present,
    cpu_bf16: Callable[[], bool] = cpu_has_bf16,
    ratio: Callable[[], float] = bf16_probe_ratio,
) -> bool:
    """Whether bf16 runs faster than fp32 here: on a GPU, always; on a CPU with the instructions, when
    :func:`bf16_probe_ratio` says so; elsewhere (emulated bf16) never, without timing anything. Not every CPU with
    the instructions is faster in bf16: an Intel Xeon with AVX-512 BF16 but no AMX measured bf16 at 1.65x fp32's
    time for the packaged model (docs/MODEL.md)."""
    return gpu() or (cpu_bf16() and ratio() < 1.0)


@functools.cache
def bf16_pays_here() -> bool:
    """:func:`bf16_pays` for this machine, probed once per process."""
    return bf16_pays()


def resolve_precision(requested: str, card: dict, pays: Callable[[], bool] = bf16_pays_here) -> str:
    """``requested`` itself, or for "auto" the precision the model card ships with (fp32 if it names none) where
    bf16 is worth it on this machine (``pays()``: computed natively and faster than fp32), fp32 elsewhere."""
    if requested not in INFERENCE_PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(INFERENCE_PRECISIONS)}, not {requested!r}")
    if requested != AUTO_PRECISION:
        return requested
    shipped = card.get("inference", {}).get("precision", "fp32")
    if shipped not in PRECISIONS:
        raise ValueError(f"the model card ships with precision {shipped!r}; known: {sorted(PRECISIONS)}")
    return shipped if shipped == "fp32" or pays() else "fp32"


def views_inside(arguments: dict) -> bool:
    """Whether a network has its views inside (it takes a ``views`` argument, as ``mirnet-refined`` does: its body
    runs on that many mirrored copies, its refinement on ``refine_views`` of them). Such a network runs once;
    others run once per view, mirrored outside them."""
    return "views" in arguments


def in_fp32_fallback(card: dict, precision: str | None) -> bool:
    """Whether a model runs its card's fp32 fallback: in ``precision`` "fp32", when the card names
    ``inference.fp32_views`` (a model that ships in bf16, for a CPU that computes only fp32 fast; docs/MODEL.md)."""
    return precision == "fp32" and card.get("inference", {}).get("fp32_views") is not None


def default_views(arguments: dict, card: dict, precision: str | None = None) -> int:
    """The views a model runs with unless told otherwise: as many as it was built with inside (``arguments``,
    resolved), else its card's. In its fp32 fallback (:func:`in_fp32_fallback`) the card's ``inference.fp32_views``
    come first."""
    inference = card.get("inference", {})
    if in_fp32_fallback(card, precision):
        return int(inference["fp32_views"])
    if views_inside(arguments):
        return int(arguments["views"])
    return int(inference.get("views", 1))


def default_refine_views(arguments: dict, card: dict, precision: str | None = None) -> int:
    """The body views the refinement runs on unless told otherwise: as many as it was built with
    (``refine_views``), but in the fp32 fallback (:func:`default_views`) the card's ``inference.fp32_refine_views``
    if it names them: fewer refinements for a CPU that computes only fp32 fast."""
    inference = card.get("inference", {})
    if in_fp32_fallback(card, precision) and "fp32_refine_views" in inference:
        return int(inference["fp32_refine_views"])
    return int(arguments.get("refine_views", 1))


class Enhancer:
    """Runs a loaded model on images of any size, in ``fp32`` or ``bf16``, tiled when they are large."""

    def __init__(
        self,
        loaded: LoadedModel,
        precision: str = DEFAULT_PRECISION,
        tile: int | None = DEFAULT_TILE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        margin: int | None = None,
        blend: int = 16,
        views: int | None = DEFAULT_VIEWS,
        context: int | None = DEFAULT_CONTEXT,
    ) -> None:
        """``views``: how many mirrored copies of each window run and are averaged (1 = plain, 2 adds the
        left-right mirror, 3 the up-down one, 4 both); ``None`` takes what the model card says it was chosen with
        (:func:`default_views`, for the precision that runs).
        For a network with its views inside (:func:`views_inside`) they are the copies its body runs on (``None``: as
        many as it was built with), and the network runs once; its refinement runs on as many of them as it was
        built with (``refine_views``), never more than the body has, and in the card's fp32 fallback on the card's
        ``inference.fp32_refine_views`` (:func:`default_refine_views`).
        ``context``: the tiles of an image share the global averages of one whole-image pass at most this many
        pixels on its longer side (downscaled if the image is larger); ``None``: each tile uses its own.
        ``precision``: "fp32", "bf16", or "auto" (:func:`resolve_precision`); ``self.precision`` is what runs.
        The defaults are :mod:`mirnet.choices`' ``DEFAULT_*``, which the CLI and the workers' settings take too.
        """
        arch = ARCHITECTURES[loaded.architecture]
        arguments = resolve_arguments(loaded.architecture, loaded.arguments)
        inside = views_inside(arguments)
        precision = resolve_precision(precision, loaded.card)
        refine_views = arguments.get("refine_views", 1)
        if views is None:
            views = default_views(arguments, loaded.card, precision)
            refine_views = default_refine_views(arguments, loaded.card, precision)
        if views not in VIEW_FLIPS:
            raise ValueError(f"views must be one of {sorted(VIEW_FLIPS)}, not {views}")
        if inside:
            # The refinement runs on some of the body's views (``refine_views``): never more than the body has.
            refine_views = min(refine_views, views)
            rebuild = views != arguments["views"] or refine_views != arguments["refine_views"]
            arguments = {**arguments, "views": views, "refine_views": refine_views}
        else:
            rebuild = False
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.loaded = loaded
        self.precision = precision
        self.batch_size = batch_size
        self.multiple = arch.size_multiple(arguments)
        radius = arch.receptive_radius(arguments)
        self.margin = margin if margin is not None else (radius if radius is not None else DEFAULT_MARGIN)
        self.blend = blend
        self.tile = tile
        if tile is not None:
            if tile % self.multiple:
                raise ValueError(f"tile {tile} must be a multiple of {self.multiple} for this network")
            if tile <= 2 * self.margin + blend:
                raise ValueError(f"tile {tile} must exceed twice the margin plus the blend ({2 * self.margin + blend})")
        model = loaded.model
        if precision == "bf16" or rebuild:
            # The views inside the network share the body's weights, so any count takes the same weights.
            model = build_model(loaded.architecture, policy=PRECISIONS[precision], **arguments)
            model.set_weights(loaded.model.get_weights())
        self.model = model
        if context is not None and context < self.multiple:
            raise ValueError(f"context must be at least {self.multiple} pixels")
        self.context = context
        self.views = views
        flips = VIEW_FLIPS[1 if inside else views]

        def predict(batch: tf.Tensor, statistics: list[list[tf.Tensor]] | None = None) -> tf.Tensor:
            total = None
            for view, axes in enumerate(flips):
                inputs = tf.reverse(batch, axes) if axes else batch
                if statistics is None:
                    output = model(inputs, training=False)
                else:
                    with replaying(statistics[view]):
                        output = model(inputs, training=False)
                output = tf.reverse(output, axes) if axes else output
                total = output if total is None else total + output
            return total / len(flips)

        def record(image: tf.Tensor) -> list[list[tf.Tensor]]:
            statistics = []
            for axes in flips:
                with recording() as values:
                    model(tf.reverse(image, axes) if axes else image, training=False)
                statistics.append(values)
            return statistics

        self._predict = tf.function(predict, reduce_retracing=True, autograph=False)
        self._record = tf.function(record, reduce_retracing=True, autograph=False)
        self.batch_sizes: list[int] = []

    def _canvas(self, image: np.ndarray) -> _Canvas:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 image, got shape {image.shape}")
        padded = pad_to_multiple(image.astype(np.float32, copy=False), self.multiple)
        height, width = padded.shape[:2]
        if self.tile is None:
            windows = [Window(0, 0, height, width, np.ones((height, width), np.float32))]
        else:
            windows = plan_windows(height, width, self.tile, self.margin, self.blend)
        return _Canvas(image.shape[0], image.shape[1], padded, windows)

    def _whole_image_statistics(self, canvas: _Canvas) -> list[list[np.ndarray]] | None:
        """The global averages of the (downscaled) whole image, per view; None if the network takes none."""
        image = canvas.padded[: canvas.height, : canvas.width]
        scale = self.context / max(canvas.height, canvas.width)
        if scale < 1:
            size = (max(round(canvas.height * scale), 1), max(round(canvas.width * scale), 1))
            image = tf.image.resize(image, size, method="area", antialias=True).numpy()
        padded = pad_to_multiple(image, self.multiple)
        statistics = [[value.numpy() for value in view] for view in self._record(tf.constant(padded[None]))]
        return statistics if statistics[0] else None

    def count_tiles(self, images: Sequence[np.ndarray]) -> int:
        return sum(len(self._canvas(image).windows) for image in images)

    def enhance_many(
        self, images: Sequence[np.ndarray], progress: Callable[[int], None] | None = None
    ) -> list[np.ndarray]:
        """Enhance all ``images`` together; windows of equal shape share batches across images.

        ``progress`` is called with the number of windows finished after each batch. The sizes of the batches
        that ran are appended to ``self.batch_sizes``.
        """
        canvases = [self._canvas(image) for image in images]
        by_shape: dict[tuple[int, int, bool], list[tuple[_Canvas, Window]]] = defaultdict(list)
        for canvas in canvases:
            if self.context is not None and len(canvas.windows) > 1:
                canvas.statistics = self._whole_image_statistics(canvas)
            for window in canvas.windows:
                by_shape[(window.height, window.width, canvas.statistics is not None)].append((canvas, window))
        for pending in by_shape.values():
            for start in range(0, len(pending), self.batch_size):
                chunk = pending[start : start + self.batch_size]
                batch = tf.constant(np.stack([_crop(canvas.padded, window) for canvas, window in chunk]))
                if chunk[0][0].statistics is None:
                    outputs = self._predict(batch).numpy()
                else:
                    outputs = self._predict(batch, _stack_statistics([canvas for canvas, _ in chunk])).numpy()
                for (canvas, window), output in zip(chunk, outputs, strict=True):
                    canvas.add(window, output)
                self.batch_sizes.append(len(chunk))
                if progress is not None:
                    progress(len(chunk))
        return [canvas.result() for canvas in canvases]

    def enhance(self, image: np.ndarray) -> np.ndarray:
        return self.enhance_many([image])[0]


def _stack_statistics(canvases: list[_Canvas]) -> list[list[tf.Tensor]]:
    """Each window's image's averages, stacked along the batch: per view, per averaging layer, N x 1 x 1 x C."""
    views = zip(*(canvas.statistics for canvas in canvases), strict=True)
    return [[tf.constant(np.concatenate(layer)) for layer in zip(*view, strict=True)] for view in views]


def _crop(image: np.ndarray, window: Window) -> np.ndarray:
    return image[window.top : window.top + window.height, window.left : window.left + window.width]


def best_seconds(enhancer: Enhancer, image: np.ndarray, repeats: int) -> float:
    """The fastest of ``repeats`` timed runs on ``image``, after one untimed run that traces and warms up."""
    import time

    enhancer.enhance(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        enhancer.enhance(image)
        times.append(time.perf_counter() - start)
    return min(times)
