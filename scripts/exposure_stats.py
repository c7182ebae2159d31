"""How much the brightness of a dark LOL input tells about the brightness of its reference.

Reads the training folder only (our485, validation pairs included; eval15 is never read) and prints, over all
pairs, the spread of the log mean brightness of the dark inputs and of the references, the correlation between
the two, and the spread left after the best straight-line fit of one on the other. A small correlation means
the exposure of the dark shot carries little about how bright the reference is, which is why training jitters
the input's gain (``exposure_jitter`` in ``mirnet.training.TrainConfig``).

Usage:
  python scripts/exposure_stats.py [--data data/lol-train]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def mean_brightness(path: Path) -> float:
    with Image.open(path) as image:
        return float(np.asarray(image.convert("RGB"), dtype=np.float32).mean() / 255.0)


def log_means(data: Path) -> tuple[np.ndarray, np.ndarray]:
    names = sorted(path.name for path in (data / "low").glob("*.png"))
    if not names:
        raise SystemExit(f"no PNG pairs under {data}/low")
    low = np.log([mean_brightness(data / "low" / name) for name in names])
    high = np.log([mean_brightness(data / "high" / name) for name in names])
    return low, high


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO / "data" / "lol-train")
    args = parser.parse_args()
    low, high = log_means(args.data)
    slope, intercept = np.polyfit(low, high, 1)
    residual = high - (slope * low + intercept)
    print(f"pairs: {len(low)}")
    print(f"reference mean brightness: {np.exp(high).mean():.3f} on average, log spread (std) {high.std():.3f}")
    print(f"dark input mean brightness: {np.exp(low).mean():.3f} on average, log spread (std) {low.std():.3f}")
    print(f"correlation of the two log means: {np.corrcoef(low, high)[0, 1]:.3f}")
    print(f"log spread of the reference after a line fitted on the input: {residual.std():.3f} (slope {slope:.3f})")


if __name__ == "__main__":
    main()
