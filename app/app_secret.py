"""The application's secret: `SESSION_SECRET`, else one made once and kept in the data folder.
It signs the sign-in cookies and the links the service e-mails (calls for slots), so it lives
below every layer that signs something."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from app.config import Settings, get_settings


@lru_cache
def _secret(configured: str | None, data_dir: Path) -> str:
    if configured:
        return configured
    path = data_dir / "session_secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


def app_secret(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return _secret(settings.session_secret, settings.data_dir)
