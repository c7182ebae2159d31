"""Training pairs: from contributed jobs, from a folder (``lowlight pairs import``), and the holdout rule.

A pair's images are copied to keys of their own (``pairs/<content hash>/low.png``) so deleting the job that
contributed it keeps the pair. Pairs are deduplicated by a hash of both images' contents.

The holdout is never trained on. The operator registers one (``--holdout``); until then a deterministic share
of imported pairs is set aside by content hash (1 in ``HOLDOUT_SHARE``), and the first imported pair always
is, so there is at least one to measure on. Contributed pairs (uploads with ``contribute=true``) never enter
the holdout: whoever uploads must not choose the pairs that decide a promotion.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from web.core.models import Job, JobStatus
from web.core.registry.models import Pair
from web.core.settings import Settings
from web.core.storage import ObjectStorage

log = logging.getLogger(__name__)

CONTRIBUTED = "job"  # the origin of pairs collected from contributed uploads
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class PairRejected(ValueError):
    """Two images that cannot form a training pair (unreadable, or of different sizes)."""


@dataclass(frozen=True)
class PairImages:
    low: bytes
    high: bytes
    extension: str = "png"


def content_hash(low: bytes, high: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(hashlib.sha256(low).digest())
    digest.update(hashlib.sha256(high).digest())
    return digest.hexdigest()


def _size(data: bytes, which: str) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise PairRejected(f"the {which} image cannot be read: {exc}") from exc


def _holdout(
    session: Session, digest: str, settings: Settings, requested: bool, origin: str
) -> tuple[bool, str | None]:
    if requested:
        return True, "operator"
    if origin == CONTRIBUTED:
        return False, None  # uploaders must not choose the pairs that decide promotion
    has_operator = session.scalar(select(func.count()).where(Pair.holdout_reason == "operator")) or 0
    if has_operator:
        return False, None
    has_any = session.scalar(select(func.count()).where(Pair.is_holdout.is_(True))) or 0
    if not has_any or int(digest[:8], 16) % settings.holdout_share == 0:
        return True, "hash"
    return False, None


def add_pair(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    images: PairImages,
    origin: str,
    source: str = "",
    job_id: int | None = None,
    holdout: bool = False,
) -> tuple[Pair, bool]:
    """Store and record a pair; returns (pair, created). An identical pair already known is returned as is."""
    digest = content_hash(images.low, images.high)
    existing = session.scalars(select(Pair).where(Pair.content_hash == digest)).first()
    if existing is not None:
        return existing, False
    low_size, high_size = _size(images.low, "low"), _size(images.high, "reference")
    if low_size != high_size:
        raise PairRejected(
            f"the low image is {low_size[0]}x{low_size[1]} but the reference {high_size[0]}x{high_size[1]}"
        )
    low_key, high_key = f"pairs/{digest}/low.{images.extension}", f"pairs/{digest}/high.{images.extension}"
    storage.put_bytes(low_key, images.low, f"image/{images.extension}")
    storage.put_bytes(high_key, images.high, f"image/{images.extension}")
    is_holdout, reason = _holdout(session, digest, settings, holdout, origin)
    pair = Pair(
        content_hash=digest,
        low_key=low_key,
        high_key=high_key,
        low_sha256=hashlib.sha256(images.low).hexdigest(),
        high_sha256=hashlib.sha256(images.high).hexdigest(),
        width=low_size[0],
        height=low_size[1],
        origin=origin,
        source=source[:255],
        job_id=job_id,
        is_holdout=is_holdout,
        holdout_reason=reason,
    )
    session.add(pair)
    try:
        session.commit()
    except IntegrityError:  # the same pair arrived concurrently; the objects are identical, keep the winner's
        session.rollback()
        return session.scalars(select(Pair).where(Pair.content_hash == digest)).one(), False
    return pair, True


def collect_from_jobs(
    session: Session, storage: ObjectStorage, settings: Settings, job_ids: list[int] | None = None
) -> list[Pair]:
    """Pairs for succeeded jobs submitted with ``contribute=true`` that have none yet (all, or ``job_ids``)."""
    query = (
        select(Job)
        .outerjoin(Pair, Pair.job_id == Job.id)
        .where(Job.contribute.is_(True), Job.status == JobStatus.SUCCEEDED.value, Job.reference_key.is_not(None))
        .where(Pair.id.is_(None))
    )
    if job_ids is not None:
        query = query.where(Job.id.in_(job_ids))
    created = []
    for job in session.scalars(query).all():
        extension = job.input_key.rsplit(".", 1)[-1]
        try:
            low, high = storage.get_bytes(job.input_key), storage.get_bytes(job.reference_key or "")
            if (job.reference_key or "").rsplit(".", 1)[-1] != extension:
                extension = "png"  # two formats: the pair keeps them under one neutral extension
            pair, new = add_pair(
                session, storage, settings, PairImages(low, high, extension), CONTRIBUTED, f"job {job.id}", job.id
            )
        except (FileNotFoundError, PairRejected) as exc:
            log.info("job %s contributes no pair: %s", job.id, exc)
            continue
        if new:
            created.append(pair)
    return created


def import_folder(
    session: Session, storage: ObjectStorage, settings: Settings, folder: str | Path, holdout: bool = False
) -> tuple[list[Pair], int]:
    """Register ``folder/low`` + ``folder/high`` (matched by file name); returns (new pairs, duplicates)."""
    root = Path(folder)
    low_dir, high_dir = root / "low", root / "high"
    if not low_dir.is_dir() or not high_dir.is_dir():
        raise FileNotFoundError(f"{root} must contain low/ and high/ folders with the same file names")
    names = sorted(p.name for p in low_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    missing = [name for name in names if not (high_dir / name).is_file()]
    if missing:
        raise PairRejected(f"{root}: no reference in high/ for {missing[:5]}")
    created, duplicates = [], 0
    for name in names:
        images = PairImages((low_dir / name).read_bytes(), (high_dir / name).read_bytes(), _extension(name))
        pair, new = add_pair(session, storage, settings, images, "import", f"{root.name}/{name}", holdout=holdout)
        if new:
            created.append(pair)
        else:
            duplicates += 1
    return created, duplicates


def _extension(name: str) -> str:
    suffix = Path(name).suffix.lower().lstrip(".")
    return "jpeg" if suffix == "jpg" else suffix


def list_pairs(session: Session, limit: int = 1000) -> list[Pair]:
    return list(session.scalars(select(Pair).order_by(Pair.id).limit(limit)))


def new_training_pairs(session: Session) -> list[Pair]:
    """Pairs not trained on yet (never holdout ones)."""
    query = select(Pair).where(Pair.is_holdout.is_(False), Pair.first_run_id.is_(None)).order_by(Pair.id)
    return list(session.scalars(query))


def count_new(session: Session) -> int:
    return session.scalar(select(func.count()).where(Pair.is_holdout.is_(False), Pair.first_run_id.is_(None))) or 0


def earlier_training_pairs(session: Session) -> list[Pair]:
    query = select(Pair).where(Pair.is_holdout.is_(False), Pair.first_run_id.is_not(None)).order_by(Pair.id)
    return list(session.scalars(query))


def holdout_pairs(session: Session) -> list[Pair]:
    return list(session.scalars(select(Pair).where(Pair.is_holdout.is_(True)).order_by(Pair.id)))
