"""The ``lowlight`` command line: enhance, eval, train, info.

TensorFlow is imported only by the subcommands that need it, so ``lowlight --help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mirnet.choices import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONTEXT,
    DEFAULT_PIXEL_LOSS,
    DEFAULT_PRECISION,
    DEFAULT_TILE,
    INFERENCE_PRECISIONS,
    PIXEL_LOSSES,
    PRECISIONS,
    VIEW_COUNTS,
)
from mirnet.imageio import ImageLimits


def _add_model_options(parser: argparse.ArgumentParser, tile: int = DEFAULT_TILE) -> None:
    parser.add_argument("--model", default=None, help="a packaged model name or a .keras file (default: packaged)")
    parser.add_argument(
        "--precision",
        choices=list(INFERENCE_PRECISIONS),
        default=DEFAULT_PRECISION,
        help="inference precision (default auto: the one the model card ships with where this machine computes it "
        "natively, fp32 elsewhere)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=tile,
        help=f"tile size for large images, 0 for whole-image inference (default {tile})",
    )
    parser.add_argument(
        "--views",
        type=int,
        choices=VIEW_COUNTS,
        default=None,
        help="mirrored copies averaged per image (default: as the model card says)",
    )
    parser.add_argument(
        "--context",
        type=int,
        default=DEFAULT_CONTEXT,
        help="tiles share the global averages of the whole image downscaled to this longer side; 0: each tile "
        f"averages alone (default {DEFAULT_CONTEXT})",
    )
    # On CPUs batching tiles does not pay (scripts/bench_batching.py); GPUs may want more.
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="tiles run through the network together"
    )


def _parse_argument(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lowlight", description="Enhance low-light photos with MIRNet.")
    commands = parser.add_subparsers(dest="command", required=True)

    enhance = commands.add_parser("enhance", help="enhance image files, folders or globs")
    enhance.add_argument("inputs", nargs="+", metavar="INPUT")
    enhance.add_argument("-o", "--out", required=True, type=Path, help="output folder (PNG files)")
    _add_model_options(enhance)
    enhance.add_argument("--max-pixels", type=int, default=ImageLimits.max_pixels, help="refuse larger images")
    enhance.add_argument("--max-side", type=int, default=ImageLimits.max_side, help="refuse longer sides")

    evaluate = commands.add_parser("eval", help="PSNR/SSIM on a folder with low/ and high/")
    evaluate.add_argument("--data", required=True)
    _add_model_options(evaluate, tile=0)  # scores are for whole-image inference unless --tile is given
    evaluate.add_argument("--json", type=Path, default=None, help="also write the scores as JSON")

    train = commands.add_parser("train", help="train a model; resumes when --out holds a checkpoint")
    train.add_argument("--config", type=Path, help="a JSON TrainConfig (command-line options override it)")
    train.add_argument("--data", help="a folder with low/ and high/")
    train.add_argument("--val-list", help="names of the pairs held out for validation")
    train.add_argument(
        "--arch", help="architecture name (default mirnet-refined, the shipped one; mirnet, mirnet-lite)"
    )
    train.add_argument(
        "--arg",
        action="append",
        type=_parse_argument,
        default=[],
        metavar="KEY=VALUE",
        help="an architecture argument, e.g. --arg channels=32 (repeatable)",
    )
    train.add_argument("--out", help="the run's folder")
    for name, kind in [
        ("steps", int),
        ("val-every", int),
        ("checkpoint-every", int),
        ("batch-size", int),
        ("crop-size", int),
        ("learning-rate", float),
        ("ssim-weight", float),
        ("exposure-weight", float),
        ("warmup-steps", int),
        ("seed", int),
        ("val-limit", int),
    ]:
        train.add_argument(f"--{name}", type=kind)
    train.add_argument("--init-from", help="start from the weights of this .keras file")
    train.add_argument(
        "--train-layer",
        action="append",
        dest="train_layers",
        metavar="PATTERN",
        help="train only the layers whose names match (e.g. 'refine_*', repeatable); the rest keep their weights",
    )
    train.add_argument(
        "--pixel-loss",
        choices=PIXEL_LOSSES,
        help=f"the pixel term of the loss (default {DEFAULT_PIXEL_LOSS}): charbonnier (L1-like) or rmse (each "
        "image's RMSE, as PSNR measures)",
    )
    train.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        help="compute in bf16 with fp32 weights (faster on CPUs with AMX); validation and saved models are fp32",
    )

    info = commands.add_parser("info", help="describe a model")
    info.add_argument("--model", default=None)
    return parser


def _enhancer(args: argparse.Namespace):
    from mirnet.inference import Enhancer
    from mirnet.models import load_model

    loaded = load_model(args.model)
    return Enhancer(
        loaded,
        precision=args.precision,
        tile=args.tile or None,
        batch_size=args.batch_size,
        views=args.views,
        context=args.context or None,
    )


def run_enhance(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from mirnet.files import collect_inputs, enhance_files

    sources, missing = collect_inputs(args.inputs)
    for item in missing:
        print(f"error: {item}: no such file, folder or matching glob", file=sys.stderr)
    if not sources:
        return 2
    enhancer = _enhancer(args)
    limits = ImageLimits(max_pixels=args.max_pixels, max_side=args.max_side)
    with tqdm(total=len(sources), unit="image", desc="enhance", file=sys.stderr) as bar:

        def on_done(outcome) -> None:
            if outcome.error:
                bar.write(f"error: {outcome.error}", file=sys.stderr)
            bar.update(1)

        outcomes = enhance_files(sources, args.out, enhancer, limits, on_done)
    enhanced = sum(1 for outcome in outcomes if outcome.error is None)
    failed = len(outcomes) - enhanced + len(missing)
    print(f"{enhanced} enhanced into {args.out}, {failed} failed")
    return 1 if failed else 0


def run_eval(args: argparse.Namespace) -> int:
    from mirnet.evaluation import evaluate_folder

    enhancer = _enhancer(args)

    def on_image(index: int, score) -> None:
        print(f"PSNR for image {score.name}: {score.psnr:.4f} dB   SSIM: {score.ssim:.4f}", flush=True)

    scores = evaluate_folder(args.data, enhancer, on_image)
    if not scores.images:
        print(f"error: {args.data} holds no image pairs", file=sys.stderr)
        return 2
    document = scores.report(_model_summary(enhancer.loaded, enhancer.precision, args.tile, enhancer.views))
    print(f"\nAverage PSNR: {scores.psnr:.4f} dB")
    print(f"Average SSIM: {scores.ssim:.4f}")
    print(
        f"(GT-mean PSNR, output scaled to the reference's brightness, not the standard metric: "
        f"{scores.gt_mean_psnr:.4f} dB)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


def _model_summary(loaded, precision: str, tile: int | None, views: int) -> dict[str, Any]:
    return {
        "version": loaded.version,
        "source": loaded.source,
        "architecture": loaded.architecture,
        "arguments": loaded.arguments,
        "parameters": loaded.model.count_params(),
        "precision": precision,
        "tile": tile or None,
        "views": views,
    }


def run_train(args: argparse.Namespace) -> int:
    from mirnet.training import TrainConfig, train

    values: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    overrides = {
        "data": args.data,
        "val_list": args.val_list,
        "arch": args.arch,
        "out": args.out,
        "steps": args.steps,
        "val_every": args.val_every,
        "checkpoint_every": args.checkpoint_every,
        "batch_size": args.batch_size,
        "crop_size": args.crop_size,
        "learning_rate": args.learning_rate,
        "pixel_loss": args.pixel_loss,
        "ssim_weight": args.ssim_weight,
        "exposure_weight": args.exposure_weight,
        "warmup_steps": args.warmup_steps,
        "seed": args.seed,
        "val_limit": args.val_limit,
        "init_from": args.init_from,
        "train_layers": args.train_layers,
        "precision": args.precision,
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    if args.arg:
        values["arguments"] = {**values.get("arguments", {}), **dict(args.arg)}
    for required in ("data", "out"):
        if not values.get(required):
            print(f"error: --{required} is required (or give it in --config)", file=sys.stderr)
            return 2
    result = train(TrainConfig(**values))
    print(
        f"done: {result.steps} steps in {result.seconds / 3600:.2f} h; best at step {result.best_step}: "
        f"val PSNR {result.best_val_psnr} dB, SSIM {result.best_val_ssim} -> {result.best_path}"
    )
    return 0


def run_info(args: argparse.Namespace) -> int:
    from mirnet.architectures import ARCHITECTURES, resolve_arguments
    from mirnet.inference import default_views, views_inside
    from mirnet.models import load_model

    loaded = load_model(args.model)
    card = loaded.card
    print(f"model:        {loaded.version}")
    print(f"weights from: {loaded.source}")
    print(f"architecture: {loaded.architecture} ({ARCHITECTURES[loaded.architecture].description})")
    print(f"arguments:    {json.dumps(loaded.arguments, sort_keys=True)}")
    print(f"parameters:   {loaded.model.count_params():,}")
    shipped = card.get("inference", {})
    arguments = resolve_arguments(loaded.architecture, loaded.arguments)
    where = " inside the network" if views_inside(arguments) else ""
    views = default_views(arguments, card)
    fallback = default_views(arguments, card, "fp32")
    fp32 = f"; in fp32 {fallback} view(s)" if fallback != views else ""
    print(
        f"inference:    {views} view(s){where}, {shipped.get('precision', 'fp32')} where the machine "
        f"computes it natively and faster{fp32} (fp32 weights; --precision fp32 or bf16 to choose)"
    )
    for section in ("training", "validation", "eval15"):
        if section in card:
            print(f"{section + ':':<14}{json.dumps(card[section], sort_keys=True)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    handlers = {"enhance": run_enhance, "eval": run_eval, "train": run_train, "info": run_info}
    from mirnet.models import ModelLoadError

    try:
        return handlers[args.command](args)
    except (ModelLoadError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
