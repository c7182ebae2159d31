"""The model, loaded once per worker process, on first use, never at import and never in a parent before fork.

TensorFlow is imported here only inside functions, so importing ``worker`` (the Celery parent, beat, the web
tier sending tasks) stays free of it. Under the prefork pool, ``worker_process_init`` loads the model in each
child right after the fork; if that fails, the child tells the parent to shut down and the whole worker exits
non-zero with the reason in the log, instead of starting and then failing every job it is given.

The model registry (``web.registry``) decides which version runs once it has one: the first load registers
the configured model as the first version, and before every batch ``get_enhancer`` checks the active version
and loads a new one once, between batches. A version that cannot be loaded is logged and the current one
keeps working, so no job fails during a switch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from web.settings import Settings
from web.storage import StorageUnavailable

if TYPE_CHECKING:
    from mirnet.inference import Enhancer

log = logging.getLogger(__name__)

EXIT_MODEL_LOAD_FAILED = 3

_enhancer: Enhancer | None = None
_enhancer_pid: int | None = None
# Shared with the pool children (created before they fork): set when one of them could not load the model.
model_load_failed = multiprocessing.Value("b", 0, lock=False)


class ModelUnavailable(RuntimeError):
    """The configured model cannot be loaded; the worker cannot do anything useful."""


def load_enhancer(settings: Settings, path: str | None = None, version: str | None = None) -> Enhancer:
    """Load the configured model, or the file ``path`` of registry version ``version`` (imports TensorFlow),
    and wrap it for batched inference."""
    from mirnet.inference import Enhancer
    from mirnet.models import ModelLoadError, load_model

    name = version or settings.model or "default"
    try:
        loaded = load_model(path or settings.model)
    except ModelLoadError as exc:
        raise ModelUnavailable(f"model {name!r} cannot be loaded: {exc}") from exc
    if version:
        loaded.version = version
    try:
        enhancer = Enhancer(
            loaded, precision=settings.precision, views=settings.views, tile=settings.tile,
            batch_size=settings.max_batch,
        )
    except ValueError as exc:
        views = "" if settings.views is None else f"VIEWS={settings.views} "
        options = f"PRECISION={settings.precision} {views}TILE={settings.tile} MAX_BATCH={settings.max_batch}"
        raise ModelUnavailable(f"model {name!r} cannot run with {options}: {exc}") from exc
    warm_up(enhancer)
    return enhancer


# Two shapes differing in every dimension: tf.function (reduce_retracing) then traces the general signature.
WARM_UP_SHAPES = ((1, 64, 64), (2, 96, 128))


def warm_up(enhancer: Enhancer) -> None:
    """Trace the network for any batch and image size before the worker says it is ready.

    Otherwise the first batches of every worker pay the tracing: on LOL's 600x400 images with the packaged
    model that made the first batch of four take 47 s against 20-26 s for the next ones (a busy 2-core machine),
    while after this warm-up the first batch took 25 s like the rest.
    """
    import numpy as np

    for count, height, width in WARM_UP_SHAPES:
        enhancer.enhance_many([np.zeros((height, width, 3), np.float32)] * count)
    enhancer.batch_sizes.clear()


def get_enhancer(settings: Settings) -> Enhancer:
    """This process's enhancer, loaded on the first call (a forked child never reuses its parent's), and
    replaced once when the registry's active version changes."""
    global _enhancer, _enhancer_pid
    active = _active_version(settings)
    if _enhancer is None or _enhancer_pid != os.getpid():
        _enhancer = _load_active(settings, active) if active else _load_configured(settings)
        _enhancer_pid = os.getpid()
        log.info(
            "loaded model %s from %s in pid %s (%s, %d view(s))",
            _enhancer.loaded.version,
            _enhancer.loaded.source,
            _enhancer_pid,
            _enhancer.precision,
            _enhancer.views,
        )
    elif active is not None and active[0] not in (_enhancer.loaded.version, _unloadable):
        _switch(settings, active)
    return _enhancer


_unloadable: str | None = None  # a version that failed to load here is not tried again before every batch


def _switch(settings: Settings, active: tuple[str, str, str]) -> None:
    global _enhancer, _unloadable
    previous = _enhancer
    try:
        _enhancer = _load_active(settings, active)
    except ModelUnavailable as exc:
        _unloadable = active[0]
        log.error("cannot switch to model %s, keeping %s: %s", active[0], previous.loaded.version, exc)
        return
    log.info("switched to model %s in pid %s", _enhancer.loaded.version, _enhancer_pid)
    if previous is not None and _download_dir is not None and Path(previous.loaded.source).parent == _download_dir:
        Path(previous.loaded.source).unlink(missing_ok=True)
        Path(previous.loaded.source).with_suffix(".json").unlink(missing_ok=True)


def _active_version(settings: Settings) -> tuple[str, str, str] | None:
    """(version, model key, card key) of the registry's active version; None when there is none or the
    database cannot say (the current model keeps working)."""
    from web.registry import services as registry
    from worker.runtime import get_context

    try:
        with get_context(settings).sessions() as session:
            row = registry.active_version(session)
            return (row.version, row.storage_key, row.card_key) if row else None
    except SQLAlchemyError as exc:
        log.warning("model registry unavailable, keeping the current model: %s", str(exc).splitlines()[0])
        return None


def _load_configured(settings: Settings) -> Enhancer:
    """The configured model, registered as the first version when the registry is empty."""
    from web.registry import services as registry
    from worker.runtime import get_context

    enhancer = load_enhancer(settings)
    ctx = get_context(settings)
    try:
        with ctx.sessions() as session:
            registry.register_initial(session, ctx.storage, enhancer.loaded.source)
    except (SQLAlchemyError, StorageUnavailable) as exc:
        log.warning("could not register model %s: %s", enhancer.loaded.version, str(exc).splitlines()[0])
    return enhancer


_download_dir: Path | None = None


def _load_active(settings: Settings, active: tuple[str, str, str]) -> Enhancer:
    """Fetch a registry version's file and card from storage into this process's folder and load it."""
    global _download_dir
    from worker.runtime import get_context

    version, model_key, card_key = active
    if _download_dir is None:
        _download_dir = Path(tempfile.mkdtemp(prefix=f"lowlight-models-{os.getpid()}-"))
    storage = get_context(settings).storage
    path = _download_dir / f"{version}.keras"
    try:
        path.write_bytes(storage.get_bytes(model_key))
        path.with_suffix(".json").write_bytes(storage.get_bytes(card_key))
    except (StorageUnavailable, FileNotFoundError) as exc:
        raise ModelUnavailable(f"model version {version!r} cannot be fetched from storage: {exc}") from exc
    return load_enhancer(settings, str(path), version)


def load_in_child_or_stop_worker(settings: Settings, in_main_process: bool = False) -> None:
    """Called in each new pool process: load now, or make the whole worker exit loudly.

    ``in_main_process``: the solo pool runs tasks in the worker itself, which can simply exit.
    """
    try:
        get_enhancer(settings)
    except ModelUnavailable as exc:
        log.critical("worker cannot start: %s", exc)
        if in_main_process:
            raise SystemExit(EXIT_MODEL_LOAD_FAILED) from exc
        model_load_failed.value = 1
        os.kill(os.getppid(), signal.SIGQUIT)  # cold shutdown of the parent; see exit_code_for_parent
        os._exit(EXIT_MODEL_LOAD_FAILED)


def exit_code_for_parent() -> int | None:
    """The exit code the parent must use because a child could not load the model, if that happened."""
    return EXIT_MODEL_LOAD_FAILED if model_load_failed.value else None
