"""Enhancing files on disk: collecting inputs, skipping bad ones with a reason, writing results."""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mirnet.data import IMAGE_SUFFIXES
from mirnet.imageio import ImageLimits, InvalidImageError, decode_image, encode_png
from mirnet.inference import Enhancer


@dataclass
class FileOutcome:
    source: Path
    output: Path | None
    error: str | None


def collect_inputs(inputs: Iterable[str]) -> tuple[list[Path], list[str]]:
    """Files, folders (their images, not recursive) and globs, in order, once each; and what matched nothing."""
    found: dict[Path, None] = {}
    missing: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(item) if Path(p).is_file())
        if not matches:
            missing.append(item)
        found.update(dict.fromkeys(matches))
    return list(found), missing


def output_path(source: Path, out_dir: Path, taken: set[Path]) -> Path:
    """``OUT/<stem>.png``; a second input with the same stem gets ``<stem>-2.png`` rather than overwriting."""
    candidate = out_dir / f"{source.stem}.png"
    counter = 2
    while candidate in taken:
        candidate = out_dir / f"{source.stem}-{counter}.png"
        counter += 1
    taken.add(candidate)
    return candidate


def enhance_files(
    sources: list[Path],
    out_dir: Path,
    enhancer: Enhancer,
    limits: ImageLimits,
    on_done: Callable[[FileOutcome], None] | None = None,
) -> list[FileOutcome]:
    """Enhance each file on its own; a file that cannot be read is reported and the others still done."""
    out_dir.mkdir(parents=True, exist_ok=True)
    taken: set[Path] = set()
    outcomes = []
    for source in sources:
        try:
            decoded = decode_image(source.read_bytes(), name=str(source), limits=limits)
            enhanced = enhancer.enhance(decoded.rgb)
            target = output_path(source, out_dir, taken)
            target.write_bytes(encode_png(decoded, enhanced))
            outcome = FileOutcome(source, target, None)
        except InvalidImageError as exc:
            outcome = FileOutcome(source, None, str(exc))
        except OSError as exc:
            outcome = FileOutcome(source, None, f"{source}: {exc.strerror or exc}")
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return outcomes
