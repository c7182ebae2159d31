"""The model, loaded once per worker process, on first use, never at import and never in a parent before fork.

TensorFlow is imported here only inside functions, so importing ``worker`` (the Celery parent, beat, the web
tier sending tasks) stays free of it. Under the prefork pool, ``worker_process_init`` loads the model in each
child right after the fork; if that fails, the child tells the parent to shut down and the whole worker exits
non-zero with the reason in the log, instead of starting and then failing every job it is given.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from typing import TYPE_CHECKING

from web.settings import Settings

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


def load_enhancer(settings: Settings) -> Enhancer:
    """Load the configured model (imports TensorFlow) and wrap it for batched inference."""
    from mirnet.inference import Enhancer
    from mirnet.models import ModelLoadError, load_model

    name = settings.model or "default"
    try:
        loaded = load_model(settings.model)
    except ModelLoadError as exc:
        raise ModelUnavailable(f"model {name!r} cannot be loaded: {exc}") from exc
    try:
        return Enhancer(loaded, precision=settings.precision, tile=settings.tile, batch_size=settings.max_batch)
    except ValueError as exc:
        options = f"PRECISION={settings.precision} TILE={settings.tile} MAX_BATCH={settings.max_batch}"
        raise ModelUnavailable(f"model {name!r} cannot run with {options}: {exc}") from exc


def get_enhancer(settings: Settings) -> Enhancer:
    """This process's enhancer, loaded on the first call (a forked child never reuses its parent's)."""
    global _enhancer, _enhancer_pid
    if _enhancer is None or _enhancer_pid != os.getpid():
        _enhancer = load_enhancer(settings)
        _enhancer_pid = os.getpid()
        log.info("loaded model %s from %s in pid %s", _enhancer.loaded.version, _enhancer.loaded.source, _enhancer_pid)
    return _enhancer


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
