"""A before/after figure: for a few images of a LOL-layout folder, dark input | enhanced | reference.

Usage: python scripts/make_figure.py [--data DIR] [--names 1.png 22.png 111.png] [--out docs/img/eval15.png]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    from mirnet.imageio import load_rgb_uint8, to_uint8
    from mirnet.inference import Enhancer
    from mirnet.metrics import psnr, ssim
    from mirnet.models import load_model

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "lol" / "eval15")
    parser.add_argument("--names", nargs="+", default=["1.png", "22.png", "111.png", "780.png"])
    parser.add_argument("--model", default=None)
    parser.add_argument("--width", type=int, default=360, help="width of each panel")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "eval15-before-after.png")
    args = parser.parse_args()

    enhancer = Enhancer(load_model(args.model), precision="auto", tile=None)  # as the platform runs it
    rows = []
    for name in args.names:
        low = load_rgb_uint8(str(args.data / "low" / name))
        high = load_rgb_uint8(str(args.data / "high" / name))
        enhanced = to_uint8(enhancer.enhance(low.astype(np.float32) / 255))
        caption = f"{name}: {psnr(enhanced, high):.2f} dB, SSIM {ssim(enhanced, high):.3f}"
        panels = [_panel(img, args.width, text) for img, text in
                  ((low, f"dark input {name}"), (enhanced, caption), (high, "reference"))]
        rows.append(np.concatenate(panels, axis=1))
    figure = Image.fromarray(np.concatenate(rows, axis=0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.out, optimize=True)
    print(f"wrote {args.out} ({figure.width}x{figure.height})")


def _panel(image: np.ndarray, width: int, text: str) -> np.ndarray:
    height = round(image.shape[0] * width / image.shape[1])
    panel = Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(panel)
    draw.rectangle((0, 0, width, 16), fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(panel)


if __name__ == "__main__":
    main()
