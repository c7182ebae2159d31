"""The exposure sweep: how models treat photos at every exposure, not only LOL's one.

Well-exposed references are darkened in linear light (x1, x1/2, x1/4, x1/8; `--noise` adds shot and read noise
at the darker steps), enhanced, and scored against the reference: PSNR, SSIM, and the share of pixels newly
clipped. A LOL-layout folder (``low/`` beside ``high/``) also gets its real low -> high row. Several models are
swept in one run, on the same inputs, so their figures compare::

    python scripts/bench_exposure.py --references ../shared/data/lol/eval15 --model v21=default --json sweep.json
    python scripts/bench_exposure.py --references data/lol-train --names ../shared/data/lol/our485-val.txt \
        --model v21=default --model new=runs/x/best.keras          # validation, during development

It prints one table (per model and step) and, with ``--per-image``, every image's figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mirnet.data import IMAGE_SUFFIXES, list_pairs, load_image_pair, natural_key, read_name_list
from mirnet.evaluation import evaluate_pairs
from mirnet.exposure import DEFAULT_FACTORS, ExposureScore, SensorNoise, stops, summarise, sweep
from mirnet.imageio import load_rgb_uint8, to_uint8
from mirnet.inference import Enhancer
from mirnet.models import load_model


def reference_paths(folder: Path, names: list[str] | None) -> list[Path]:
    """The references of ``folder``: its ``high/`` images if it has one (LOL layout), else its own images."""
    source = folder / "high" if (folder / "high").is_dir() else folder
    paths = sorted(
        (p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: natural_key(p.name)
    )
    if names is not None:
        wanted = set(names)
        paths = [p for p in paths if p.name in wanted or p.stem in wanted]
    if not paths:
        raise SystemExit(f"no reference images in {source}")
    return paths


def parse_model(text: str) -> tuple[str, str]:
    label, _, path = text.partition("=")
    return (label, path) if path else (Path(text).stem, text)


def run_model(label: str, path: str, args: argparse.Namespace, references, pairs) -> dict:
    enhancer = Enhancer(load_model(path), precision=args.precision)

    def enhance(image: np.ndarray) -> np.ndarray:
        return to_uint8(enhancer.enhance(image.astype(np.float32) / 255.0))

    started = time.perf_counter()
    noise = SensorNoise() if args.noise else None
    scores = sweep(references, enhance, args.factors, noise)
    evaluation = evaluate_pairs(enhancer, (load_image_pair(pair) for pair in pairs))
    lol = [{"name": image.name, "psnr": image.psnr, "ssim": image.ssim} for image in evaluation.images]
    seconds = time.perf_counter() - started
    print(f"{label}: {len(scores) + len(lol)} images in {seconds:.0f} s, {enhancer.precision}", file=sys.stderr)
    return {"label": label, "model": path, "precision": enhancer.precision, "scores": scores, "lol": lol}


def print_table(results: list[dict]) -> None:
    print(f"{'model':<12} {'input':<8} {'images':>6} {'PSNR':>8} {'SSIM':>7} {'clipped':>8} {'worst':>7} {'>0.5%':>6}")
    for result in results:
        if result["lol"]:
            mean_psnr = np.mean([row["psnr"] for row in result["lol"]])
            mean_ssim = np.mean([row["ssim"] for row in result["lol"]])
            print(f"{result['label']:<12} {'LOL low':<8} {len(result['lol']):>6} {mean_psnr:>8.3f} {mean_ssim:>7.4f}")
        for row in summarise(result["scores"]):
            print(
                f"{result['label']:<12} {stops(row.factor):<8} {row.images:>6} {row.psnr:>8.3f} {row.ssim:>7.4f} "
                f"{row.mean_newly_clipped:>8.2%} {row.max_newly_clipped:>7.2%} {row.images_over_half_percent:>6}"
            )


def print_per_image(results: list[dict]) -> None:
    for result in results:
        print(f"\n{result['label']}: per image (PSNR dB / newly clipped)")
        names = list(dict.fromkeys(score.name for score in result["scores"]))
        factors = list(dict.fromkeys(score.factor for score in result["scores"]))
        print(f"{'image':<12}" + "".join(f"{stops(f):>18}" for f in factors))
        by_key: dict[tuple[str, float], ExposureScore] = {(s.name, s.factor): s for s in result["scores"]}
        for name in names:
            cells = "".join(f"{by_key[name, f].psnr:>10.2f} {by_key[name, f].newly_clipped:>6.2%}" for f in factors)
            print(f"{name:<12}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--references", type=Path, required=True, help="a folder of images, or a LOL-layout folder")
    parser.add_argument("--names", type=Path, help="only these names (one a line, e.g. our485-val.txt)")
    parser.add_argument("--model", action="append", type=parse_model, help="LABEL=PATH or a packaged name")
    parser.add_argument("--factors", type=float, nargs="+", default=list(DEFAULT_FACTORS))
    parser.add_argument("--noise", action="store_true", help="shot and read noise at the factors under 1")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--no-lol", action="store_true", help="skip the LOL low -> high row")
    parser.add_argument("--per-image", action="store_true")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)

    names = read_name_list(args.names) if args.names else None
    paths = reference_paths(args.references, names)
    references = [(p.stem, load_rgb_uint8(str(p))) for p in paths]
    pairs = [] if args.no_lol or not (args.references / "low").is_dir() else list_pairs(args.references)
    if names is not None:
        pairs = [pair for pair in pairs if pair.name in names or Path(pair.name).stem in names]
    results = [
        run_model(label, path, args, references, pairs) for label, path in (args.model or [("default", "default")])
    ]
    print_table(results)
    if args.per_image:
        print_per_image(results)
    if args.json:
        document = [
            {**{k: v for k, v in r.items() if k != "scores"}, "scores": [vars(s) for s in r["scores"]],
             "summary": [vars(s) for s in summarise(r["scores"])]}
            for r in results
        ]  # fmt: skip
        args.json.write_text(json.dumps({"factors": args.factors, "noise": args.noise, "models": document}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
