"""The model, loaded once per worker process, on first use, never at import and never in a parent before fork.

TensorFlow is imported here only inside functions, so importing ``worker`` (the Celery parent, beat, the web
tier sending tasks) stays free of it. Under the prefork pool, ``worker_process_init`` loads the model in each
child right after the fork; if that fails, the child tells the parent to shut down and the whole worker exits
non-zero with the reason in the log, instead of starting and then failing every job it is given.

The model registry (``web.core.registry``) decides which version runs once it has one: the first load registers
the configured model as the first version, and before every batch ``ServedModel.current`` checks the active
version and loads a new one once, between batches. A version that cannot be loaded is logged and the current one
keeps working, so no job fails during a switch.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from web.core.registry import services as registry
from web.core.settings import Settings
from web.core.storage import ObjectStorage, StorageUnavailable
from worker.serving import serving_enhancer

if TYPE_CHECKING:
    from mirnet.inference import Enhancer

log = logging.getLogger(__name__)

EXIT_MODEL_LOAD_FAILED = 3


class ModelUnavailable(RuntimeError):
    """The configured model cannot be loaded; the worker cannot do anything useful."""


def load_enhancer(settings: Settings, path: str | None = None, version: str | None = None) -> Enhancer:
    """Load the configured model, or the file ``path`` of registry version ``version`` (imports TensorFlow),
    and wrap it for batched inference."""
    from mirnet.models import ModelLoadError, load_model

    name = version or settings.model or "default"
    try:
        loaded = load_model(path or settings.model)
    except ModelLoadError as exc:
        raise ModelUnavailable(f"model {name!r} cannot be loaded: {exc}") from exc
    if version:
        loaded.version = version
    try:
        enhancer = serving_enhancer(loaded, settings)
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


class ServedModel:
    """The model one worker process serves: loaded on first use, and replaced once when the registry's active
    version changes. Each process builds its own (see ``worker.context``), so a forked child never reuses its
    parent's."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], storage: ObjectStorage) -> None:
        self.settings, self.sessions, self.storage = settings, sessions, storage
        self.enhancer: Enhancer | None = None
        self.unloadable: str | None = None  # a version that failed to load here is not tried before every batch
        self.download_dir: Path | None = None

    def current(self) -> Enhancer:
        """The enhancer to run the next batch with (checks the registry's active version first)."""
        active = self._active_version()
        if self.enhancer is None:
            self.enhancer = self._load_active(active) if active else self._load_configured()
            log.info(
                "loaded model %s from %s in pid %s (%s, %d view(s))",
                self.enhancer.loaded.version,
                self.enhancer.loaded.source,
                os.getpid(),
                self.enhancer.precision,
                self.enhancer.views,
            )
        elif active is not None and active[0] not in (self.enhancer.loaded.version, self.unloadable):
            self._switch(active)
        return self.enhancer

    def _switch(self, active: tuple[str, str, str]) -> None:
        previous = self.enhancer
        try:
            self.enhancer = self._load_active(active)
        except ModelUnavailable as exc:
            self.unloadable = active[0]
            log.error("cannot switch to model %s, keeping %s: %s", active[0], previous.loaded.version, exc)
            return
        log.info("switched to model %s in pid %s", self.enhancer.loaded.version, os.getpid())
        source = Path(previous.loaded.source)
        if self.download_dir is not None and source.parent == self.download_dir:
            source.unlink(missing_ok=True)
            source.with_suffix(".json").unlink(missing_ok=True)

    def _active_version(self) -> tuple[str, str, str] | None:
        """(version, model key, card key) of the registry's active version; None when there is none or the
        database cannot say (the current model keeps working)."""
        try:
            with self.sessions() as session:
                row = registry.active_version(session)
                return (row.version, row.storage_key, row.card_key) if row else None
        except SQLAlchemyError as exc:
            log.warning("model registry unavailable, keeping the current model: %s", str(exc).splitlines()[0])
            return None

    def _load_configured(self) -> Enhancer:
        """The configured model, registered as the first version when the registry is empty."""
        enhancer = load_enhancer(self.settings)
        try:
            with self.sessions() as session:
                registry.register_initial(session, self.storage, enhancer.loaded.source)
        except (SQLAlchemyError, StorageUnavailable) as exc:
            log.warning("could not register model %s: %s", enhancer.loaded.version, str(exc).splitlines()[0])
        return enhancer

    def _load_active(self, active: tuple[str, str, str]) -> Enhancer:
        """Fetch a registry version's file and card from storage into this process's folder and load it."""
        version, model_key, card_key = active
        if self.download_dir is None:
            self.download_dir = Path(tempfile.mkdtemp(prefix=f"lowlight-models-{os.getpid()}-"))
        path = self.download_dir / f"{version}.keras"
        try:
            path.write_bytes(self.storage.get_bytes(model_key))
            path.with_suffix(".json").write_bytes(self.storage.get_bytes(card_key))
        except (StorageUnavailable, FileNotFoundError) as exc:
            raise ModelUnavailable(f"model version {version!r} cannot be fetched from storage: {exc}") from exc
        return load_enhancer(self.settings, str(path), version)


def load_or_stop_worker(model: ServedModel, failed: Synchronized, in_main_process: bool = False) -> None:
    """Called in each new pool process: load now, or make the whole worker exit loudly.

    ``failed`` is shared with the parent (created before the fork): set here, it tells the parent which exit
    code to use. ``in_main_process``: the solo pool runs tasks in the worker itself, which can simply exit.
    """
    try:
        model.current()
    except ModelUnavailable as exc:
        log.critical("worker cannot start: %s", exc)
        if in_main_process:
            raise SystemExit(EXIT_MODEL_LOAD_FAILED) from exc
        failed.value = 1
        os.kill(os.getppid(), signal.SIGQUIT)  # cold shutdown of the parent; see worker.celery_app
        os._exit(EXIT_MODEL_LOAD_FAILED)
