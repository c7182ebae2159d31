"""How much tiling and bf16 change the output of a model, on a LOL-layout folder (default: eval15).

For every image: PSNR between tiled and whole-image output (all fp32), with the tiles sharing the averages of the
whole image (``context`` 1024: LOL's images fit, so exact averages), sharing those of the image downscaled to 304
px, about half its size (what a photo larger than the context gets), or each averaging alone; and the
PSNR/SSIM against the reference of whole-image fp32, whole-image bf16 and tiled fp32 inference.
Usage: python scripts/compare_tiling.py [--data DIR] [--model NAME_OR_PATH] [--tile 256] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    from mirnet.data import list_pairs
    from mirnet.imageio import load_rgb_uint8, to_uint8
    from mirnet.inference import Enhancer
    from mirnet.metrics import psnr, ssim
    from mirnet.models import load_model

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "lol" / "eval15"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    loaded = load_model(args.model)
    runs = {
        "fp32": Enhancer(loaded, tile=None),
        "bf16": Enhancer(loaded, precision="bf16", tile=None),
        "tiled": Enhancer(loaded, tile=args.tile),
        "tiled_half_context": Enhancer(loaded, tile=args.tile, context=304),
        "tiled_alone": Enhancer(loaded, tile=args.tile, context=None),
    }
    rows = []
    print(f"model {loaded.version}; tiles of {args.tile} with margin {runs['tiled'].margin}")
    print(f"{'image':<10}{'tiled~whole dB':>15}{'half ctx':>9}{'alone':>7}{'fp32 PSNR':>11}{'bf16 PSNR':>11}"
          f"{'tiled PSNR':>12}{'fp32 SSIM':>11}{'bf16 SSIM':>11}")
    for pair in list_pairs(args.data):
        low = load_rgb_uint8(str(pair.low)).astype(np.float32) / 255
        high = load_rgb_uint8(str(pair.high))
        out = {name: to_uint8(enhancer.enhance(low)) for name, enhancer in runs.items()}
        row = {
            "name": pair.name,
            "tiled_vs_whole_psnr": psnr(out["tiled"], out["fp32"]),
            "tiled_half_context_vs_whole_psnr": psnr(out["tiled_half_context"], out["fp32"]),
            "tiled_alone_vs_whole_psnr": psnr(out["tiled_alone"], out["fp32"]),
            **{f"{name}_psnr": psnr(image, high) for name, image in out.items()},
            **{f"{name}_ssim": ssim(image, high) for name, image in out.items()},
        }
        rows.append(row)
        print(f"{pair.name:<10}{row['tiled_vs_whole_psnr']:>15.2f}{row['tiled_half_context_vs_whole_psnr']:>9.2f}"
              f"{row['tiled_alone_vs_whole_psnr']:>7.2f}{row['fp32_psnr']:>11.3f}{row['bf16_psnr']:>11.3f}"
              f"{row['tiled_psnr']:>12.3f}{row['fp32_ssim']:>11.4f}{row['bf16_ssim']:>11.4f}", flush=True)
    means = {key: float(np.mean([r[key] for r in rows])) for key in rows[0] if key != "name"}
    for key in ("tiled_vs_whole_psnr", "tiled_half_context_vs_whole_psnr", "tiled_alone_vs_whole_psnr"):
        finite = [r[key] for r in rows if np.isfinite(r[key])]  # identical outputs have infinite PSNR
        means[key] = float(np.mean(finite)) if finite else float("inf")
    print(f"{'mean':<10}{means['tiled_vs_whole_psnr']:>15.2f}{means['tiled_half_context_vs_whole_psnr']:>9.2f}"
          f"{means['tiled_alone_vs_whole_psnr']:>7.2f}{means['fp32_psnr']:>11.3f}{means['bf16_psnr']:>11.3f}"
          f"{means['tiled_psnr']:>12.3f}{means['fp32_ssim']:>11.4f}{means['bf16_ssim']:>11.4f}")
    print(f"bf16 PSNR cost: {means['fp32_psnr'] - means['bf16_psnr']:+.4f} dB (fp32 minus bf16)")
    if args.json:
        args.json.write_text(json.dumps({"model": loaded.version, "tile": args.tile, "images": rows,
                                         "mean": means}, indent=2) + "\n")


if __name__ == "__main__":
    main()
