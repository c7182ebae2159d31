"""``lowlight eval``: per-image PSNR/SSIM over a LOL-layout folder, the table, and the JSON report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mirnet.data import Pair, list_pairs
from mirnet.imageio import load_rgb_uint8, to_uint8
from mirnet.inference import Enhancer
from mirnet.metrics import psnr, ssim


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float
    gt_mean_psnr: float  # NOT the standard metric: the output first scaled to the reference's mean brightness


def gt_mean_psnr(enhanced: np.ndarray, reference: np.ndarray) -> float:
    """PSNR after scaling the 8-bit output so that its mean grey level equals the reference's ("GT-mean").

    Some papers report this; it hides errors of global brightness, so it is a diagnostic here (how much of the
    error is exposure rather than noise, colour or detail), never the headline figure.
    """
    gain = reference.mean() / max(float(enhanced.mean()), 1e-6)
    scaled = np.clip(np.round(enhanced.astype(np.float64) * gain), 0, 255).astype(np.uint8)
    return psnr(scaled, reference)


def evaluate_folder(
    data_dir: str, enhancer: Enhancer, on_image: Callable[[int, ImageScore], None] | None = None
) -> list[ImageScore]:
    """Enhance every ``low/`` image and score it against ``high/`` at 8 bits."""
    scores = []
    for index, pair in enumerate(list_pairs(data_dir), start=1):
        score = score_pair(pair, enhancer)
        scores.append(score)
        if on_image is not None:
            on_image(index, score)
    return scores


def score_pair(pair: Pair, enhancer: Enhancer) -> ImageScore:
    low = load_rgb_uint8(str(pair.low))
    high = load_rgb_uint8(str(pair.high))
    if low.shape != high.shape:
        raise ValueError(f"{pair.name}: low {low.shape} and high {high.shape} differ in size")
    enhanced = to_uint8(enhancer.enhance(low.astype(np.float32) / 255.0))
    return ImageScore(pair.name, psnr(enhanced, high), ssim(enhanced, high), gt_mean_psnr(enhanced, high))


def report(scores: list[ImageScore], model: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "model": model,
        "images": [{"name": s.name, "psnr": s.psnr, "ssim": s.ssim, "gt_mean_psnr": s.gt_mean_psnr} for s in scores],
        "mean": {
            "psnr": float(np.mean([s.psnr for s in scores])) if scores else None,
            "ssim": float(np.mean([s.ssim for s in scores])) if scores else None,
            "gt_mean_psnr": float(np.mean([s.gt_mean_psnr for s in scores])) if scores else None,
        },
    }
