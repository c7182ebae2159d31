"""Which validation pairs show a scene that training has already seen, and how models score on each kind.

LOL photographs many scenes more than once, so a validation pair of our485 can have a "twin" in the training
pairs: another shot of the same scene whose reference is almost the same picture. A twin is a training
reference whose 60x40 grey thumbnail, mean removed, correlates with the validation reference's above
``--threshold`` (0.95). Only our485 is read (validation pairs and the training pairs beside them); eval15 never.

``twins`` prints, for the validation split, how many pairs have a twin, how many training pairs are twins, and
how far apart in brightness a reference and its twins are; ``--write FILE`` also writes the twins' names, one a
line, for a training config's ``exclude_list`` (a run that leaves them out is validated on unseen scenes only).
``score`` runs models on the validation split and prints their PSNR on all pairs, on those with a twin and on
those without (the last is the only part of the split that measures scenes the model has not been trained on),
and each model's mean per-image gain over the first one with its standard error: the noise that a difference
between two models has to stand out of.

Usage:
  python scripts/validation_scenes.py twins [--list] [--write configs/lists/validation-twins.txt]
  python scripts/validation_scenes.py score v3=7777b12 v4=mirnet/weights/default.keras [--views 1 3] [--shipped] \
      [--precision bf16]

A model is ``label=path`` (a .keras file with its card beside it) or ``label=commit`` (the packaged default
weights as committed there, taken with ``git show``); ``label=a+b+c`` is an ensemble of such models, their outputs
averaged (each with the views asked for).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from mirnet.choices import PRECISIONS

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "lol-train"
VAL_LIST = REPO.parent / "shared" / "data" / "lol" / "our485-val.txt"
THUMBNAIL = (60, 40)

if TYPE_CHECKING:
    from mirnet.data import Pair
    from mirnet.inference import Enhancer
    from mirnet.models import LoadedModel


@dataclass(frozen=True)
class ValidationScene:
    name: str
    best_correlation: float
    twins: tuple[str, ...]
    brightness_gap: float  # mean |log(reference mean / twin reference mean)| over the twins; nan without twins


@dataclass(frozen=True)
class TwinSearch:
    scenes: list[ValidationScene]  # one per validation pair, in the split's order
    twin_names: set[str]  # the training pairs that are some validation pair's twin
    train_count: int  # training pairs searched
    validation: list[Pair]  # the validation pairs, in the order of ``scenes``
    train_brightness: np.ndarray  # each training reference's mean brightness, in [0, 1]

    def has_twin(self) -> dict[str, bool]:
        return {scene.name: bool(scene.twins) for scene in self.scenes}


def _reference(data: Path, name: str) -> tuple[np.ndarray, float]:
    """A reference's thumbnail (grey, mean removed, unit norm) and its mean brightness."""
    with Image.open(data / "high" / name) as image:
        rgb = image.convert("RGB")
        brightness = float(np.asarray(rgb, dtype=np.float64).mean() / 255.0)
        grey = np.asarray(rgb.convert("L").resize(THUMBNAIL, Image.BILINEAR), dtype=np.float64).ravel()
    grey -= grey.mean()
    return grey / max(float(np.linalg.norm(grey)), 1e-12), brightness


def _split_references(data: Path, val_list: Path) -> tuple[list[str], list[tuple[np.ndarray, float]], list[Pair]]:
    """The training pairs' names and references (thumbnail, brightness), and the validation pairs."""
    from mirnet.data import list_pairs, read_name_list, split_pairs

    training, validation = split_pairs(list_pairs(data), read_name_list(val_list))
    train_names = [pair.name for pair in training]
    return train_names, [_reference(data, name) for name in train_names], validation


def best_training_correlations(data: Path, val_list: Path, folder: Path) -> list[tuple[str, float]]:
    """For each reference of another LOL-layout ``folder`` (a test set: only its references are read, nothing is
    scored), its best correlation with a training reference: above the threshold, a scene training has seen."""
    from mirnet.data import list_pairs

    _, train_refs, _ = _split_references(data, val_list)
    thumbnails = np.stack([thumbnail for thumbnail, _ in train_refs])
    return [(pair.name, float((thumbnails @ _reference(folder, pair.name)[0]).max())) for pair in list_pairs(folder)]


def find_twins(data: Path, val_list: Path, threshold: float) -> TwinSearch:
    """Each validation pair with its training twins, and the set of training pairs that are someone's twin."""
    train_names, train_refs, validation = _split_references(data, val_list)
    thumbnails = np.stack([thumbnail for thumbnail, _ in train_refs])
    scenes, twin_names = [], set()
    for pair in validation:
        thumbnail, brightness = _reference(data, pair.name)
        correlations = thumbnails @ thumbnail
        twins = [i for i in np.argsort(-correlations) if correlations[i] > threshold]
        gaps = [abs(np.log(brightness / train_refs[i][1])) for i in twins]
        scenes.append(
            ValidationScene(
                name=pair.name,
                best_correlation=float(correlations.max()),
                twins=tuple(train_names[i] for i in twins),
                brightness_gap=float(np.mean(gaps)) if gaps else float("nan"),
            )
        )
        twin_names.update(train_names[i] for i in twins)
    brightness = np.array([b for _, b in train_refs])
    return TwinSearch(scenes, twin_names, len(train_names), validation, brightness)


def print_twins(search: TwinSearch, listing: bool) -> None:
    scenes, twin_names, train_count = search.scenes, search.twin_names, search.train_count
    seen = [scene for scene in scenes if scene.twins]
    print(
        f"{len(seen)} of {len(scenes)} validation pairs have a training twin; "
        f"{len(twin_names)} of {train_count} training pairs are twins of a validation pair"
    )
    print(
        f"mean |log brightness ratio| of a validation reference to its twins: "
        f"{np.mean([scene.brightness_gap for scene in seen]):.3f}"
    )
    unseen = [scene for scene in scenes if not scene.twins]
    print(
        "without a twin (best correlation): "
        + ", ".join(f"{scene.name} ({scene.best_correlation:.2f})" for scene in unseen)
    )
    if seen:
        print(f"lowest best correlation among pairs with a twin: {min(s.best_correlation for s in seen):.3f}")
    if listing:
        for scene in scenes:
            print(f"{scene.name}\t{scene.best_correlation:.3f}\t{len(scene.twins)}\t{','.join(scene.twins)}")


def write_twin_list(search: TwinSearch, path: Path, threshold: float) -> None:
    """The twins' names, one a line in the data's natural order, under a comment that says how they were found."""
    from mirnet.data import natural_key

    header = (
        f"# Training pairs of LOL our485 that are another shot of a validation scene (reference thumbnails\n"
        f"# correlating above {threshold}): {len(search.twin_names)} of {search.train_count}.\n"
        f"# Written by: python scripts/validation_scenes.py twins --write {path}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(f"{name}\n" for name in sorted(search.twin_names, key=natural_key)))


class Ensemble:
    """Several enhancers whose outputs are averaged: what ``evaluate_pairs`` needs of an enhancer."""

    def __init__(self, enhancers: list[Enhancer]) -> None:
        self.enhancers = enhancers

    def enhance(self, image: np.ndarray) -> np.ndarray:
        return np.mean([enhancer.enhance(image) for enhancer in self.enhancers], axis=0)


def _load_spec(spec: str, workdir: Path) -> tuple[str, list[LoadedModel]]:
    """``label=where``, or ``label=where+where+...`` for an ensemble whose outputs are averaged."""
    from mirnet.models import load_model

    label, _, where = spec.partition("=")
    if not where:
        raise SystemExit(f"a model is label=path or label=commit (+ more for an ensemble), not {spec!r}")
    return label, [load_model(_model_path(part, workdir)) for part in where.split("+")]


def _model_path(where: str, workdir: Path) -> Path:
    path = Path(where)
    if path.suffix == ".keras":
        return path
    target = workdir / where / "model.keras"
    if target.exists():
        return target
    target.parent.mkdir(parents=True)
    for source, suffix in (("default.keras", ".keras"), ("default.json", ".json")):
        blob = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{where}:mirnet/weights/{source}"], check=True, capture_output=True
        ).stdout
        target.with_suffix(suffix).write_bytes(blob)
    return target


def score(
    specs: list[str],
    views: list[int | None],
    data: Path,
    val_list: Path,
    threshold: float,
    precision: str = "fp32",
) -> None:
    """Each model with each number of ``views`` (``None``: the views its card ships with), in ``precision``,
    paired against the first model scored with the same number; the first model's later numbers of views are
    also paired against its first (what more views gain)."""
    from mirnet.data import load_pair_arrays
    from mirnet.inference import Enhancer
    from mirnet.training import evaluate_pairs

    search = find_twins(data, val_list, threshold)
    validation = search.validation
    twin_of = search.has_twin()
    has_twin = np.array([twin_of[pair.name] for pair in validation])  # in the order the arrays are scored
    arrays = [load_pair_arrays(pair) for pair in validation]
    print(
        f"validation PSNR (dB): all {len(validation)} pairs | {has_twin.sum()} with a training twin "
        f"| {(~has_twin).sum()} without"
    )
    first: dict[int | None, tuple[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for spec in specs:
            label, members = _load_spec(spec, Path(workdir))
            for count in views:
                enhancers = [Enhancer(loaded, precision=precision, tile=None, views=count) for loaded in members]
                _, _, per_image = evaluate_pairs(Ensemble(enhancers), arrays)  # type: ignore[arg-type]
                psnr = np.array([value for value, _ in per_image])
                shown = "+".join(str(enhancer.views) for enhancer in enhancers)
                how = f"shipped: {shown} view(s)" if count is None else f"{shown} view{'s' if count > 1 else ''}"
                line = (
                    f"{label} ({how}): {psnr.mean():.3f} | "
                    f"{psnr[has_twin].mean():.3f} | {psnr[~has_twin].mean():.3f}"
                )
                if count in first:
                    line += "; " + paired_difference(psnr, *first[count], has_twin)
                else:
                    if first and spec == specs[0]:
                        base_label, base = first[views[0]]
                        line += "; " + paired_difference(psnr, f"{base_label} ({views[0]} view(s))", base, has_twin)
                    first[count] = (label, psnr)
                print(line, flush=True)


def mean_with_error(difference: np.ndarray) -> str:
    """A paired difference's mean with its standard error, and how many standard errors it is, so that a rule of
    "more than its standard error" is read off, not rounded."""
    error = difference.std(ddof=1) / np.sqrt(difference.size) if difference.size > 1 else float("nan")
    ratio = f" ({difference.mean() / error:+.1f} SE)" if error > 0 else ""
    return f"{difference.mean():+.3f} ± {error:.3f}{ratio}"


def paired_difference(psnr: np.ndarray, base_label: str, base: np.ndarray, has_twin: np.ndarray) -> str:
    """The mean per-image gain over the first model, with its standard error (the same pairs, so paired) and
    their ratio."""

    def gain(mask: np.ndarray) -> str:
        return mean_with_error(psnr[mask] - base[mask])

    everything = np.ones_like(has_twin)
    return f"vs {base_label}: {gain(everything)} | {gain(has_twin)} | {gain(~has_twin)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--val-list", type=Path, default=VAL_LIST)
    parser.add_argument("--threshold", type=float, default=0.95)
    commands = parser.add_subparsers(dest="command", required=True)
    twins = commands.add_parser("twins", help="count validation pairs with training twins")
    twins.add_argument("--list", action="store_true", help="one line per validation pair")
    twins.add_argument("--write", type=Path, help="write the twins' names here (a training exclude_list)")
    twins.add_argument("--folder", type=Path, help="also: which references of this LOL folder have a training twin")
    scoring = commands.add_parser("score", help="validation PSNR of models, with and without twins")
    scoring.add_argument("models", nargs="+", help="label=path.keras or label=commit; a+b+c averages models")
    scoring.add_argument("--views", type=int, nargs="+", default=[1, 3])
    scoring.add_argument(
        "--shipped", action="store_true", help="also each model with the views its card ships with, paired"
    )
    scoring.add_argument("--precision", choices=list(PRECISIONS), default="fp32", help="inference precision")
    args = parser.parse_args()
    if args.command == "twins":
        search = find_twins(args.data, args.val_list, args.threshold)
        print_twins(search, args.list)
        if args.write:
            write_twin_list(search, args.write, args.threshold)
            print(f"wrote {len(search.twin_names)} names to {args.write}")
        if args.folder:
            best = best_training_correlations(args.data, args.val_list, args.folder)
            above = [name for name, correlation in best if correlation > args.threshold]
            print(f"{args.folder}: {len(above)} of {len(best)} pairs have a training twin; best correlations: "
                  + ", ".join(f"{name} ({correlation:.3f})" for name, correlation in best))
    else:
        views = [*args.views, *([None] if args.shipped else [])]
        score(args.models, views, args.data, args.val_list, args.threshold, args.precision)


if __name__ == "__main__":
    main()
