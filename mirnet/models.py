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

import mirnet.architectures  # noqa: F401  (imports and so registers every custom layer for deserialization)
from mirnet.architectures import resolve_arguments

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


# Cards written before the network was defined once (issue 45) describe networks with the switches of 46 research
# stages. A plain network had them all off; the shipped lineage (mirnet-lol-v5 on) had these on.
_SWITCHES_OFF: dict[str, Any] = {
    "anchor": False,
    "refine": 0,
    "refine_blocks": 0,
    "refine_context": 0,
    "refine_context_groups": 1,
    "refine_context_features": False,
    "refine_context_to_path": False,
    "refine_features": False,
    "refine_fold": 1,
    "refine_keeps_mean": False,
    "refine_spread": False,
    "refine_views_features": False,
}
_LINEAGE_SWITCHES = {
    **_SWITCHES_OFF,
    **dict(refine=16, refine_blocks=3, refine_context=16, refine_keeps_mean=True, refine_spread=True),
    **dict.fromkeys(("refine_context_features", "refine_context_to_path", "refine_features"), True),
}
_RENAMED = {"num_rrg": "groups", "num_mrb": "blocks", "body_views": "views"}
# The old "mirnet"'s defaults of the arguments that remain (in today's names).
_OLD_DEFAULTS = {"channels": 64, "groups": 3, "blocks": 2, "fold": 1, "views": 1, "refine_views": 1}
_RETIRED = "an experiment retired from main; it loads at commit ec77cf6 (tag research-stage-46)"


def upgrade_card(card: dict[str, Any]) -> dict[str, Any]:
    """A model card in today's terms. Cards written before issue 45 name the shipped lineage "mirnet" with 18
    arguments: they become ``mirnet-refined`` (``num_rrg``, ``num_mrb``, ``body_views`` become ``groups``,
    ``blocks``, ``views``; ``inference.views``, which it ignored, goes), so that the fine-tunes retraining made keep
    loading and can be fine-tuned again (their layers have today's names). Old cards of a plain ``mirnet`` or
    ``mirnet-lite`` get the new names. Today's cards pass through unchanged; any other is a :class:`ModelLoadError`.
    """
    architecture, arguments = card.get("architecture"), dict(card.get("arguments") or {})
    old_names = {*_SWITCHES_OFF, *_RENAMED, "fold", "refine_views"}
    if architecture not in ("mirnet", "mirnet-lite") or not old_names & set(arguments):
        return card
    switches = {**_SWITCHES_OFF, **{key: value for key, value in arguments.items() if key in _SWITCHES_OFF}}
    rest = {_RENAMED.get(key, key): value for key, value in arguments.items() if key not in _SWITCHES_OFF}
    rest = {**_OLD_DEFAULTS, **rest}
    unrefined = ("fold", "views", "refine_views")
    if switches == _SWITCHES_OFF and all(rest[key] == 1 for key in unrefined):
        upgraded = {**card, "arguments": {key: value for key, value in rest.items() if key not in unrefined}}
    elif architecture == "mirnet" and switches == _LINEAGE_SWITCHES:
        inference = {key: value for key, value in card.get("inference", {}).items() if key != "views"}
        upgraded = {**card, "architecture": "mirnet-refined", "arguments": rest, "inference": inference}
    else:
        raise ModelLoadError(f"{architecture} with {arguments} is {_RETIRED}")
    try:
        resolve_arguments(upgraded["architecture"], upgraded["arguments"])
    except ValueError as exc:
        raise ModelLoadError(f"{architecture} with {arguments} is {_RETIRED}: {exc}") from exc
    return upgraded


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
    """Load a model and its card (:func:`upgrade_card`); offline, from the package when no path is given."""
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
    card = upgrade_card(card)
    version = card.get("version") or f"{path.stem}-{card.get('sha256', file_sha256(path))[:12]}"
    return LoadedModel(model=model, card=card, version=version, source=str(path))
