"""Saving and loading models with the JSON model card that travels beside every weight file."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

import mirnet.architectures  # noqa: F401  (registers PixelShuffle/PixelUnshuffle for deserialization)
import mirnet.layers  # noqa: F401  (registers the custom layers for deserialization)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "default"
REQUIRED_CARD_FIELDS = ("architecture", "arguments")


class ModelLoadError(RuntimeError):
    """A model that cannot be found or loaded. Workers treat this as fatal."""


@dataclass
class LoadedModel:
    """A Keras model together with its card and where it came from."""

    model: keras.Model
    card: dict[str, Any]
    version: str
    source: str

    @property
    def architecture(self) -> str:
        return self.card["architecture"]

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(self.card["arguments"])


def card_path(model_path: str | os.PathLike) -> Path:
    return Path(model_path).with_suffix(".json")


def count_parameters(model: keras.Model) -> int:
    return int(model.count_params())


def save_model(model: keras.Model, path: str | os.PathLike, card: dict[str, Any]) -> None:
    """Write ``path`` (.keras, weights only for inference: no optimizer) and its card beside it, atomically."""
    missing = [field for field in REQUIRED_CARD_FIELDS if field not in card]
    if missing:
        raise ValueError(f"the model card needs {missing}")
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files end in .keras, not {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp, include_optimizer=False)
    os.replace(tmp, path)
    card = {**card, "parameters": count_parameters(model), "sha256": file_sha256(path)}
    tmp_card = card_path(path).with_name(f".{path.stem}.tmp.json")
    tmp_card.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_card, card_path(path))


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model_path(name_or_path: str | os.PathLike | None) -> Path:
    """A path to a .keras file, or the name of a packaged model (``default``)."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    candidate = Path(name_or_path)
    if candidate.suffix == ".keras" or candidate.exists():
        if not candidate.is_file():
            raise ModelLoadError(f"model file not found: {candidate}")
        return candidate
    packaged = WEIGHTS_DIR / f"{name_or_path}.keras"
    if not packaged.is_file():
        names = sorted(p.stem for p in WEIGHTS_DIR.glob("*.keras"))
        raise ModelLoadError(f"no packaged model named {name_or_path!r} (packaged: {names}) and no such file")
    return packaged


def load_model(name_or_path: str | os.PathLike | None = None) -> LoadedModel:
    """Load a model and its card; offline, from the package when no path is given."""
    path = resolve_model_path(name_or_path)
    card_file = card_path(path)
    if not card_file.is_file():
        raise ModelLoadError(f"{path} has no model card ({card_file.name}) beside it")
    try:
        card = json.loads(card_file.read_text())
        with warnings.catch_warnings():
            # Keras warns that composite layers have no build(); their sublayers are built when the graph is
            # rebuilt, before the weights load (tests check outputs are identical after a round trip).
            warnings.filterwarnings("ignore", message=r".*does not have a `build\(\)` method.*")
            model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelLoadError(f"cannot load {path}: {exc}") from exc
    missing = [field for field in REQUIRED_CARD_FIELDS if field not in card]
    if missing:
        raise ModelLoadError(f"{card_file} lacks {missing}")
    version = card.get("version") or f"{path.stem}-{card.get('sha256', file_sha256(path))[:12]}"
    return LoadedModel(model=model, card=card, version=version, source=str(path))
