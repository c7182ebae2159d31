"""Validation PSNR against training hours for several runs, as a standalone SVG (no plotting library needed).

Usage: python scripts/plot_training.py runs/recipe/01-body runs/recipe/02-body-whole-images \
           --after runs/recipe/02-body-whole-images=runs/recipe/01-body --out docs/img/validation-psnr.svg

A curve is a run folder (its log.csv) or a log CSV file. ``--after RUN=EARLIER`` draws RUN from where EARLIER ended
(EARLIER is another curve, drawn after its own EARLIER if it has one, or a number of hours).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from svg_chart import frame, legend_entry, open_svg

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 420, 60, 220, 20, 50


def read_log(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run if run.suffix == ".csv" else run / "log.csv").open()))


def curve_name(run: Path) -> str:
    return run.stem if run.suffix == ".csv" else run.name


def start_hours(run: str, after: dict[str, str]) -> float:
    """Hours at which ``run`` starts: 0, or where the curve (or number of hours) it continues ends."""
    if run not in after:
        return 0.0
    earlier = after[run]
    try:
        return float(earlier)
    except ValueError:
        return start_hours(earlier, after) + float(read_log(Path(earlier))[-1]["seconds"]) / 3600


def read_curve(run: Path, offset_hours: float = 0.0) -> list[tuple[float, float]]:
    rows = read_log(run)
    return [
        (offset_hours + float(row["seconds"]) / 3600, float(row["val_psnr"])) for row in rows if row.get("val_psnr")
    ]


def svg(curves: dict[str, list[tuple[float, float]]], title: str) -> str:
    points = [point for curve in curves.values() for point in curve]
    x_max = max(x for x, _ in points) * 1.05
    y_min, y_max = int(min(y for _, y in points)) - 1, int(max(y for _, y in points)) + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + x / x_max * plot_w

    def sy(y: float) -> float:
        return TOP + (y_max - y) / (y_max - y_min) * plot_h

    parts = open_svg(WIDTH, HEIGHT, title, LEFT, 14)
    for y in range(y_min, y_max + 1):
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{sy(y) + 4:.1f}" text-anchor="end">{y}</text>')
    step = 0.25 if x_max <= 2 else 0.5
    tick = 0.0
    while tick <= x_max:
        parts.append(f'<text x="{sx(tick):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{tick:g}</text>')
        tick += step
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">training hours (2 CPU cores)'
                 "</text>")
    parts += frame(LEFT, TOP, plot_w, plot_h, "validation PSNR (dB)")
    for index, (name, curve) in enumerate(curves.items()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in curve)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in curve:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>')
        parts += legend_entry(WIDTH - RIGHT + 12, TOP + 14 + index * 18, colour, name)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with log.csv) or log CSV files")
    parser.add_argument("--after", action="append", default=[], metavar="RUN=EARLIER",
                        help="draw RUN after EARLIER (a curve whose weights RUN started from, or hours)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--title", default="Validation PSNR (48 pairs of our485) during training")
    args = parser.parse_args()
    after = {str(Path(run)): earlier for run, earlier in (item.split("=", 1) for item in args.after)}
    after = {run: earlier if _is_number(earlier) else str(Path(earlier)) for run, earlier in after.items()}
    curves = {curve_name(run): read_curve(run, start_hours(str(run), after)) for run in args.runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg({name: curve for name, curve in curves.items() if curve}, args.title))
    print(f"wrote {args.out}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    main()
