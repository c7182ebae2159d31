"""The packaged models over their versions: validation and eval15, and how far apart consecutive versions really are.

Reads, for each commit given, the card (``mirnet/weights/default.json``) and the eval15 report that ``package_model.py
measure`` wrote there (``docs/results/eval15-default.json``): nothing is run and eval15 is not measured again, so
this only rereads figures that were reported once each. It prints each version's validation PSNR (the card's: one
pass of the network, which for v8 holds its 4 views), its eval15 PSNR, SSIM and GT-mean PSNR (the last is not the
standard metric), and the mean per-image eval15 gain over the version before with its paired standard error: with
15 images, that error is what a difference between two versions has to stand out of. ``--svg`` draws every eval15
image's PSNR across the versions, their mean and the validation PSNR.

Usage:
  python scripts/model_history.py [v1=29425ee v2=6938002 ...] [--svg docs/img/model-history.svg]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
from svg_chart import frame, legend_entry, open_svg

REPO = Path(__file__).resolve().parents[1]
PACKAGED = [
    "v1=29425ee", "v2=6938002", "v3=7777b12", "v4=1648c8c", "v5=f8f7a1a", "v6=e1a0848", "v7=152830c", "v8=b8e7d17",
    "v9=c492723", "v10=8162766", "v11=4c41a3c", "v12=1c06954", "v13=594f2a8", "v14=58f8e34", "v15=ce9ff4a",
    "v16=db36868", "v17=e47da3b", "v18=564c6cb", "v19=c7c6cc8", "v20=cf05880", "v21=bb0b82b",
]
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 840, 440, 60, 250, 30, 50


@dataclass(frozen=True)
class Version:
    label: str
    name: str  # the card's version
    validation_psnr: float  # the card's: one pass of the network (v8's runs its 4 views inside)
    eval15: dict[str, dict[str, float]]  # image name -> psnr, ssim, gt_mean_psnr

    def mean(self, metric: str) -> float:
        return float(np.mean([scores[metric] for scores in self.eval15.values()]))


def _show(commit: str, path: str) -> dict:
    text = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:{path}"], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(text)


def load_version(spec: str) -> Version:
    label, _, commit = spec.partition("=")
    if not commit:
        raise SystemExit(f"a version is label=commit, not {spec!r}")
    card = _show(commit, "mirnet/weights/default.json")
    report = _show(commit, "docs/results/eval15-default.json")
    if report["model"]["version"] != card["version"]:
        raise SystemExit(f"{commit}: the eval15 report is of {report['model']['version']}, the card {card['version']}")
    metrics = ("psnr", "ssim", "gt_mean_psnr")
    images = {image["name"]: {key: image[key] for key in metrics} for image in report["images"]}
    return Version(label, card["version"], card["validation"]["psnr"], images)


def paired_gain(before: Version, after: Version) -> tuple[float, float]:
    """Mean per-image eval15 PSNR gain from ``before`` to ``after`` and its standard error (the same images)."""
    if before.eval15.keys() != after.eval15.keys():
        raise ValueError(f"{before.label} and {after.label} were scored on different images")
    difference = np.array([after.eval15[name]["psnr"] - before.eval15[name]["psnr"] for name in before.eval15])
    return float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(difference.size))


def table(versions: list[Version]) -> str:
    lines = [
        "| version | validation PSNR (one pass) | eval15 PSNR | eval15 SSIM | eval15 GT-mean PSNR "
        "| eval15 gain over the one before |",
        "|---|---|---|---|---|---|",
    ]
    for index, version in enumerate(versions):
        gain = ""
        if index:
            mean, error = paired_gain(versions[index - 1], version)
            gain = f"{mean:+.3f} ± {error:.3f}"
        lines.append(
            f"| {version.label} ({version.name}) | {version.validation_psnr:.2f} | {version.mean('psnr'):.3f} | "
            f"{version.mean('ssim'):.4f} | {version.mean('gt_mean_psnr'):.2f} | {gain} |"
        )
    return "\n".join(lines)


def svg(versions: list[Version]) -> str:
    """Each eval15 image's PSNR across the versions (grey), their mean (red) and the validation PSNR (blue)."""
    names = list(versions[0].eval15)
    values = [version.eval15[name]["psnr"] for version in versions for name in names]
    values += [version.validation_psnr for version in versions]
    y_min, y_max = int(min(values)) - 1, int(max(values)) + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(index: int) -> float:
        return LEFT + (index + 0.5) / len(versions) * plot_w

    def sy(value: float) -> float:
        return TOP + (y_max - value) / (y_max - y_min) * plot_h

    def polyline(points: list[float], colour: str, width: float) -> str:
        path = " ".join(f"{sx(i):.1f},{sy(value):.1f}" for i, value in enumerate(points))
        return f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="{width}"/>'

    title = "PSNR of the packaged models: each eval15 image, their mean, and validation"
    parts = open_svg(WIDTH, HEIGHT, title, LEFT, 18)
    for value in range(y_min, y_max + 1, 2):
        y = f"{sy(value):.1f}"
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{sy(value) + 4:.1f}" text-anchor="end">{value}</text>')
    for index, version in enumerate(versions):
        parts.append(
            f'<text x="{sx(index):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{escape(version.label)}</text>'
        )
    parts += frame(LEFT, TOP, plot_w, plot_h, "PSNR (dB)")
    for name in names:
        points = [version.eval15[name]["psnr"] for version in versions]
        parts.append(polyline(points, "#bbb", 1))
        parts.append(f'<text x="{sx(len(versions) - 1) + 6:.1f}" y="{sy(points[-1]) + 4:.1f}" fill="#999" '
                     f'font-size="9">{escape(name)}</text>')
    parts.append(polyline([version.mean("psnr") for version in versions], "#d62728", 3))
    parts.append(polyline([version.validation_psnr for version in versions], "#1f77b4", 3))
    legend = [
        ("#d62728", "eval15, mean of 15"),
        ("#1f77b4", "validation, 48 pairs (one pass)"),
        ("#bbb", "one eval15 image"),
    ]
    for index, (colour, text) in enumerate(legend):
        parts += legend_entry(WIDTH - RIGHT + 56, TOP + 14 + index * 18, colour, text)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", default=PACKAGED, help="label=commit, oldest first")
    parser.add_argument("--svg", type=Path, help="write the figure here")
    args = parser.parse_args()
    versions = [load_version(spec) for spec in args.versions]
    print(table(versions))
    if args.svg:
        args.svg.parent.mkdir(parents=True, exist_ok=True)
        args.svg.write_text(svg(versions))
        print(f"wrote {args.svg}")


if __name__ == "__main__":
    main()
