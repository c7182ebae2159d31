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
    return ImageScore(pair.name, psnr(enhanced, high), ssim(enhanced, high))


def report(scores: list[ImageScore], model: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` document."""
    return {
        "model": model,
        "images": [{"name": s.name, "psnr": s.psnr, "ssim": s.ssim} for s in scores],
        "mean": {
            "psnr": float(np.mean([s.psnr for s in scores])) if scores else None,
            "ssim": float(np.mean([s.ssim for s in scores])) if scores else None,
        },
    }
