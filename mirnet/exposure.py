"""Photos at other exposures, made from well-exposed references in linear light, and how a model handles them.

A camera that lets in half the light records half the linear signal, and its sRGB file is that signal encoded. So
a reference darkened by one stop is ``encode(0.5 * decode(reference))``, rounded to 8 bits. At the darker steps a
real sensor's noise grows against the signal: shot noise (Poisson, its variance proportional to the light) and a
read-noise floor, which :func:`darken` adds when given a :class:`SensorNoise`.

:func:`sweep` runs any enhancer over references at several exposures and scores each output against its
reference: PSNR, SSIM and the share of pixels newly clipped (an output at 0 or 255 where the reference is not).
A model that is safe on every photo brightens the dark steps and leaves the reference itself (factor 1) alone.
NumPy only: the sweep's arithmetic is tested without TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mirnet.metrics import psnr, ssim

# The exposure sweep's steps: the reference, then one, two and three stops under.
DEFAULT_FACTORS = (1.0, 0.5, 0.25, 0.125)


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] to linear light (IEC 61966-2-1), in float64."""
    srgb = np.asarray(srgb, dtype=np.float64)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] to sRGB values (the inverse of :func:`srgb_to_linear`), clipped to [0, 1]."""
    linear = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


@dataclass(frozen=True)
class SensorNoise:
    """A sensor's noise: ``photons_at_white`` photons reach a pixel that the reference shows at full white (so
    shot noise is relatively stronger the less light there is), plus ``read_noise`` photons of Gaussian noise."""

    photons_at_white: float = 2000.0
    read_noise: float = 3.0


def darken(
    reference: np.ndarray,
    factor: float,
    noise: SensorNoise | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """An 8-bit RGB ``reference`` as if taken with ``factor`` of its light (0.5: one stop under), 8-bit.

    A factor of 1 without noise returns the reference unchanged (not a round trip through linear light)."""
    if not 0.0 < factor <= 1.0:
        raise ValueError(f"an exposure factor is in (0, 1], not {factor}")
    if reference.dtype != np.uint8:
        raise TypeError("darken takes 8-bit images")
    if factor == 1.0 and noise is None:
        return reference.copy()
    light = srgb_to_linear(reference / 255.0) * factor
    if noise is not None:
        rng = rng if rng is not None else np.random.default_rng(0)
        photons = rng.poisson(light * noise.photons_at_white).astype(np.float64)
        photons += rng.normal(0.0, noise.read_noise, size=light.shape)
        light = photons / noise.photons_at_white
    return np.rint(linear_to_srgb(light) * 255.0).astype(np.uint8)


def newly_clipped(output: np.ndarray, reference: np.ndarray) -> float:
    """The share of pixels where some channel of ``output`` is at 0 or 255 and that channel of ``reference`` is
    not at the same extreme: highlights blown out (or shadows crushed) by the model, not by the camera."""
    if output.shape != reference.shape:
        raise ValueError(f"images differ in shape: {output.shape} vs {reference.shape}")
    at_white = (output == 255) & (reference != 255)
    at_black = (output == 0) & (reference != 0)
    return float(np.mean(np.any(at_white | at_black, axis=-1)))


@dataclass(frozen=True)
class ExposureScore:
    """One reference at one exposure, enhanced and scored against the reference."""

    name: str
    factor: float
    psnr: float
    ssim: float
    newly_clipped: float


def sweep(
    references: Iterable[tuple[str, np.ndarray]],
    enhance: Callable[[np.ndarray], np.ndarray],
    factors: Sequence[float] = DEFAULT_FACTORS,
    noise: SensorNoise | None = None,
) -> list[ExposureScore]:
    """Each 8-bit ``(name, reference)`` darkened by each factor, given to ``enhance`` (8-bit in, 8-bit out) and
    scored against the reference. Noise (when given) is added at the factors under 1 only, seeded per image and
    factor so that every model in one run sees the same inputs."""
    scores = []
    for index, (name, reference) in enumerate(references):
        for step, factor in enumerate(factors):
            step_noise = noise if factor < 1.0 else None
            rng = np.random.default_rng([index, step])
            dark = darken(reference, factor, step_noise, rng)
            output = enhance(dark)
            scores.append(
                ExposureScore(
                    name, factor, psnr(output, reference), ssim(output, reference), newly_clipped(output, reference)
                )
            )
    return scores


@dataclass(frozen=True)
class ExposureSummary:
    """The scores of one factor over all references."""

    factor: float
    images: int
    psnr: float
    ssim: float
    mean_newly_clipped: float
    max_newly_clipped: float
    images_over_half_percent: int  # images with more than 0.5% of their pixels newly clipped


def summarise(scores: Sequence[ExposureScore]) -> list[ExposureSummary]:
    """Per factor (in the order first seen): mean PSNR and SSIM, and how much was clipped (mean, worst, count)."""
    factors = list(dict.fromkeys(score.factor for score in scores))
    summaries = []
    for factor in factors:
        rows = [score for score in scores if score.factor == factor]
        clipped = [row.newly_clipped for row in rows]
        summaries.append(
            ExposureSummary(
                factor=factor,
                images=len(rows),
                psnr=float(np.mean([row.psnr for row in rows])),
                ssim=float(np.mean([row.ssim for row in rows])),
                mean_newly_clipped=float(np.mean(clipped)),
                max_newly_clipped=float(np.max(clipped)),
                images_over_half_percent=sum(value > 0.005 for value in clipped),
            )
        )
    return summaries


def stops(factor: float) -> str:
    """A factor as photographers say it: "x1", "-1 EV", "-2 EV"..."""
    if factor == 1.0:
        return "x1"
    return f"{np.log2(factor):+.3g} EV"
