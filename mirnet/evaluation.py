"""The one evaluation: per-image PSNR/SSIM at 8 bits over whole images, and their means.

``lowlight eval``, training's validation, the retraining gate and the scripts all score through
:func:`evaluate_pairs`, so a figure means the same wherever it is printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mirnet.data import ImagePair, list_pairs, load_image_pair
from mirnet.imageio import to_uint8
from mirnet.inference import Enhancer
from mirnet.metrics import psnr, ssim


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float
    gt_mean_psnr: float  # NOT the standard metric: the output first scaled to the reference's mean brightness


@dataclass(frozen=True)
class Evaluation:
    """The scores of every image, in the order given, and their means (None for no image)."""

    images: list[ImageScore]

    def _mean(self, metric: str) -> float | None:
        return float(np.mean([getattr(score, metric) for score in self.images])) if self.images else None

    @property
    def psnr(self) -> float | None:
        return self._mean("psnr")

    @property
    def ssim(self) -> float | None:
        return self._mean("ssim")

    @property
    def gt_mean_psnr(self) -> float | None:
        return self._mean("gt_mean_psnr")

    def report(self, model: dict[str, Any]) -> dict[str, Any]:
        """The ``lowlight eval --json`` document: what ran (``model``), each image, the means."""
        return {
            "model": model,
            "images": [
                {"name": s.name, "psnr": s.psnr, "ssim": s.ssim, "gt_mean_psnr": s.gt_mean_psnr} for s in self.images
            ],
            "mean": {"psnr": self.psnr, "ssim": self.ssim, "gt_mean_psnr": self.gt_mean_psnr},
        }


def gt_mean_psnr(enhanced: np.ndarray, reference: np.ndarray) -> float:
    """PSNR after scaling the 8-bit output so that its mean grey level equals the reference's ("GT-mean").

    Some papers report this; it hides errors of global brightness, so it is a diagnostic here (how much of the
    error is exposure rather than noise, colour or detail), never the headline figure.
    """
    gain = reference.mean() / max(float(enhanced.mean()), 1e-6)
    scaled = np.clip(np.round(enhanced.astype(np.float64) * gain), 0, 255).astype(np.uint8)
    return psnr(scaled, reference)


def evaluate_pairs(
    enhancer: Enhancer, pairs: Iterable[ImagePair], on_image: Callable[[int, ImageScore], None] | None = None
) -> Evaluation:
    """Enhance each pair's dark image whole and score it against its reference at 8 bits, as the literature
    reports; ``on_image(index, score)`` after each (from 1). A pair whose sides differ in size is refused."""
    scores = []
    for index, pair in enumerate(pairs, start=1):
        if pair.low.shape != pair.high.shape:
            raise ValueError(f"{pair.name}: low {pair.low.shape} and high {pair.high.shape} differ in size")
        enhanced, reference = to_uint8(enhancer.enhance(pair.low)), to_uint8(pair.high)
        score = ImageScore(
            pair.name, psnr(enhanced, reference), ssim(enhanced, reference), gt_mean_psnr(enhanced, reference)
        )
        scores.append(score)
        if on_image is not None:
            on_image(index, score)
    return Evaluation(scores)


def evaluate_folder(
    data_dir: str | Path, enhancer: Enhancer, on_image: Callable[[int, ImageScore], None] | None = None
) -> Evaluation:
    """:func:`evaluate_pairs` over a LOL-layout folder (``low/`` and ``high/``), reading one pair at a time."""
    return evaluate_pairs(enhancer, (load_image_pair(pair) for pair in list_pairs(data_dir)), on_image)
