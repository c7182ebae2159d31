"""Seconds per megapixel for each architecture and precision, and peak memory of a 24-megapixel tiled run.

Everything is measured in this one run on this machine (the machines are noisy: compare ratios, not runs).
Usage: python scripts/bench_inference.py [--repeats 3] [--skip-full] [--skip-24mp] [--fp32-views 2 3 4]

``--fp32-views`` also times the packaged model in fp32 with each of those numbers of views, against the same seed
timing: what an fp32 fallback of that many views would cost on this machine (its card names the one it runs).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "lol" / "sample" / "low" / "2.png"


def seconds_per_image(
    loaded, precision: str, image: np.ndarray, repeats: int, views: int | None = None
) -> float:
    from mirnet.inference import Enhancer, best_seconds

    return best_seconds(Enhancer(loaded, precision=precision, tile=None, views=views), image, repeats)


def benchmark_architectures(repeats: int, skip_full: bool, fp32_views: list[int] | None = None) -> None:
    from mirnet.architectures import build_model
    from mirnet.imageio import load_rgb_uint8
    from mirnet.inference import resolve_precision
    from mirnet.models import load_model

    image = load_rgb_uint8(str(SAMPLE)).astype(np.float32) / 255
    megapixels = image.shape[0] * image.shape[1] / 1e6
    packaged = load_model()
    candidates = [("default (packaged)", packaged)]
    seed_args = {"groups": 3, "blocks": 2, "channels": 64}
    candidates.append(("mirnet-lite 3x2x64 (seed)", _wrap(build_model("mirnet-lite", **seed_args), "mirnet-lite",
                                                          seed_args)))
    if not skip_full:
        candidates.append(("mirnet 3x2x64 (full)", _wrap(build_model("mirnet", **seed_args), "mirnet", seed_args)))
    print(f"image {SAMPLE.name}: {image.shape[1]}x{image.shape[0]} ({megapixels:.2f} MP), best of {repeats}")
    print(f"{'model':<28}{'params':>12}{'fp32 s/img':>12}{'fp32 s/MP':>11}{'bf16 s/img':>12}{'bf16/fp32':>11}")
    results = {}
    for name, loaded in candidates:
        fp32 = seconds_per_image(loaded, "fp32", image, repeats)
        bf16 = seconds_per_image(loaded, "bf16", image, repeats)
        results[name] = {"fp32": fp32, "bf16": bf16}
        params = loaded.model.count_params()
        print(f"{name:<28}{params:>12,}{fp32:>12.3f}{fp32 / megapixels:>11.3f}{bf16:>12.3f}{bf16 / fp32:>11.2f}")
    seed = results["mirnet-lite 3x2x64 (seed)"]["fp32"]
    default = results["default (packaged)"]
    shipped = resolve_precision("auto", packaged.card)  # what the platform runs here
    print(f"default fp32 time / seed fp32 time: {default['fp32'] / seed:.2f}")
    print(f"default as it runs here ({shipped}, precision auto) / seed fp32 time: {default[shipped] / seed:.2f}")
    for views in fp32_views or []:
        seconds = seconds_per_image(packaged, "fp32", image, repeats, views)
        print(f"default fp32 with {views} view(s): {seconds:.3f} s, / seed fp32 time: {seconds / seed:.2f}")


def _wrap(model, arch: str, arguments: dict):
    from mirnet.models import LoadedModel

    return LoadedModel(model, {"architecture": arch, "arguments": arguments}, arch, "built")


def benchmark_24mp(tile: int) -> None:
    """Enhance a 6000x4000 photo with the packaged model through the CLI; report the child's peak RSS."""
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        base = Image.open(SAMPLE).convert("RGB").resize((6000, 4000), Image.Resampling.BILINEAR)
        source = Path(tmp) / "24mp.png"
        base.save(source, compress_level=1)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mirnet.cli", "enhance", str(source), "-o", str(Path(tmp) / "out"),
                        "--tile", str(tile)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"24 MP (6000x4000) tiled at {tile}: {seconds:.1f} s, peak RSS {peak_mb:,.0f} MB (limit 4096 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-full", action="store_true", help="skip the 44M-parameter full MIRNet")
    parser.add_argument("--skip-24mp", action="store_true")
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--fp32-views", type=int, nargs="+", help="also time the default in fp32 with these views")
    args = parser.parse_args()
    benchmark_architectures(args.repeats, args.skip_full, args.fp32_views)
    if not args.skip_24mp:
        benchmark_24mp(args.tile)


if __name__ == "__main__":
    main()
