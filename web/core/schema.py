"""Every table of the platform on one ``MetaData``: what Alembic's migrations are compared against.

Each domain keeps its rows in its own module (jobs and tokens in ``web.core.models``, the retraining domain's in
``web.core.registry.models``) and a table joins ``Base.metadata`` when its module is imported. This module imports
them all, so code that needs the whole schema says so here instead of one row module importing another.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from web.core import models
from web.core.registry import models as registry_models

ROW_MODULES = (models, registry_models)
metadata: MetaData = models.Base.metadata
