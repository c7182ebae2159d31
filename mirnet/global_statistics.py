"""Where the global averages inside a network come from, so that the tiles of one image can share them.

The full MIRNet averages its features over the whole input in every channel attention and every selective kernel
fusion. A tile run alone sees only its own averages, so it comes out brighter or darker than its neighbours.
``recording()`` collects those averages, in the order the layers compute them, while the network runs on the
whole image (or a downscaled copy of it); ``replaying(values)`` makes every averaging layer take the recorded value
instead of its own, in the same order, while the tiles run. Outside both, ``spatial_mean`` is a plain mean.

Both are Python-side switches: inside ``tf.function`` they act while the function is traced, so they must be
entered inside the traced function, around the model call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from keras import ops

_active = threading.local()


class _Recording:
    def __init__(self) -> None:
        self.values: list[Any] = []


class _Replay:
    def __init__(self, values: Sequence[Any]) -> None:
        self.values = list(values)
        self.position = 0


def spatial_mean(inputs):
    """The mean over height and width (N x 1 x 1 x C), recorded or replaced when a context is active."""
    mean = ops.mean(inputs, axis=(1, 2), keepdims=True)
    mode = getattr(_active, "mode", None)
    if isinstance(mode, _Recording):
        mode.values.append(mean)
        return mean
    if isinstance(mode, _Replay):
        if mode.position >= len(mode.values):
            raise RuntimeError(f"the network averages more than the {len(mode.values)} recorded values")
        value = mode.values[mode.position]
        mode.position += 1
        return ops.cast(value, mean.dtype)
    return mean


@contextmanager
def _activated(mode: _Recording | _Replay) -> Iterator[None]:
    if getattr(_active, "mode", None) is not None:
        raise RuntimeError("global statistics are already being recorded or replayed")
    _active.mode = mode
    try:
        yield
    finally:
        _active.mode = None


@contextmanager
def recording() -> Iterator[list[Any]]:
    """Collect every spatial mean computed inside the block; the yielded list fills as the network runs."""
    mode = _Recording()
    with _activated(mode):
        yield mode.values


@contextmanager
def replaying(values: Sequence[Any]) -> Iterator[None]:
    """Use ``values`` (as recorded, each N x 1 x 1 x C or broadcastable to it) in place of the spatial means."""
    mode = _Replay(values)
    with _activated(mode):
        yield
    if mode.position != len(mode.values):
        raise RuntimeError(f"{len(mode.values)} values were given but the network averaged {mode.position} times")
