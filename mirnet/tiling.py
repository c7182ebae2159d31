"""Overlapping tiles with blended seams, so memory stays bounded on any image size.

A tile contributes nothing within ``margin`` pixels of an edge it shares with another tile (those pixels lack
context), then ramps up linearly over ``blend`` pixels. Neighbouring tiles overlap by at least
``2 * margin + blend``, so every pixel has positive total weight. With ``margin`` at least the network's
receptive radius, each weighted pixel equals the whole-image result exactly, so the blend is exact too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """One tile: where it starts, its size, and its blending weights (H x W)."""

    top: int
    left: int
    height: int
    width: int
    weights: np.ndarray


def axis_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread window starts covering ``length`` with windows of ``tile`` overlapping by >= ``overlap``."""
    if tile >= length:
        return [0]
    step = tile - overlap
    if step <= 0:
        raise ValueError(f"tile {tile} is too small for an overlap of {overlap}")
    count = math.ceil((length - tile) / step) + 1
    return sorted({round(i * (length - tile) / (count - 1)) for i in range(count)})


def axis_weights(length: int, start: int, size: int, margin: int, blend: int) -> np.ndarray:
    """Weights along one axis for the window [start, start + size) of an axis of ``length``."""
    position = np.arange(size, dtype=np.float64)
    distance = np.full(size, np.inf)
    if start > 0:
        distance = np.minimum(distance, position)
    if start + size < length:
        distance = np.minimum(distance, size - 1 - position)
    return np.clip((distance - margin + 1) / (blend + 1), 0.0, 1.0).astype(np.float32)


def plan_windows(height: int, width: int, tile: int, margin: int, blend: int = 16) -> list[Window]:
    """The windows that cover a ``height x width`` image with tiles of at most ``tile x tile``."""
    overlap = 2 * margin + blend
    windows = []
    tile_h, tile_w = min(tile, height), min(tile, width)
    for top in axis_starts(height, tile_h, overlap):
        weights_y = axis_weights(height, top, tile_h, margin, blend)
        for left in axis_starts(width, tile_w, overlap):
            weights_x = axis_weights(width, left, tile_w, margin, blend)
            windows.append(Window(top, left, tile_h, tile_w, np.outer(weights_y, weights_x)))
    return windows
