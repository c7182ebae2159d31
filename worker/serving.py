"""How a worker runs a model: one function, so that what the retraining gate scores is what users get.

TensorFlow is imported inside the function, so importing this module stays free of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from web.core.settings import Settings

if TYPE_CHECKING:
    from mirnet.inference import Enhancer
    from mirnet.models import LoadedModel


def serving_enhancer(loaded: LoadedModel, settings: Settings) -> Enhancer:
    """``loaded`` as the workers serve it: the settings' precision ("auto": the card's where this machine computes
    it natively and faster, else fp32 and the card's fp32 fallback), views (None: the network's, or the fallback's),
    tile and batch. Raises ValueError for settings the model cannot run with."""
    from mirnet.inference import Enhancer

    return Enhancer(
        loaded, precision=settings.precision, views=settings.views, tile=settings.tile, batch_size=settings.max_batch
    )
