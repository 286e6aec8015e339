"""Imports every domain's models so that Base.metadata knows the whole schema (Alembic)."""

from app.db import Base
from app.directory import models as directory_models

__all__ = ["Base", "directory_models"]
