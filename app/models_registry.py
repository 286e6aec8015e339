"""Imports every domain's models so that Base.metadata knows the whole schema (Alembic)."""

from app import idempotency
from app.activity import audit as audit_models
from app.activity import models as activity_models
from app.crisis import models as crisis_models
from app.db import Base
from app.directory import models as directory_models
from app.medecin_traitant import models as mt_models
from app.outbox import models as outbox_models
from app.sas_bridge import feed_models, sign_in_models
from app.scheduling import booking_models
from app.scheduling import models as scheduling_models
from app.unmet_demand import models as unmet_models

__all__ = [
    "Base",
    "activity_models",
    "audit_models",
    "booking_models",
    "crisis_models",
    "directory_models",
    "feed_models",
    "idempotency",
    "mt_models",
    "outbox_models",
    "scheduling_models",
    "sign_in_models",
    "unmet_models",
]
