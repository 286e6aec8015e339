"""The one Settings object, read from the environment (documented in README.md)."""

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.client_certs import SubjectPattern


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # postgresql:// or postgresql+asyncpg:// URL; unset: embedded PostgreSQL in DATA_DIR.
    database_url: str | None = None
    data_dir: Path = Path(".data")
    # Connections past the pool's size are opened for one request and closed after it (each
    # new connection also prepares its statements again): 20 kept open per worker serve a
    # worker's usual concurrency without that churn.
    db_pool_size: int = Field(default=20, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # Off: a ping costs a round trip on every request. A connection dropped by a PostgreSQL
    # restart fails one request with a 503 instead, and the pool then discards every
    # connection opened before the failure.
    db_pool_pre_ping: bool = False

    # How long a process keeps the caller of an API key it has seen (0: no cache, one lookup
    # a request). Entries are dropped at once on any change to keys, practices or SAS links
    # (app/caller_cache.py); this bounds them should a notification ever be lost.
    caller_cache_seconds: float = Field(default=60.0, ge=0, le=3600)

    public_base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    # JSON logs in production; "text" is easier to read at a terminal.
    log_format: str = "json"

    hold_seconds: int = Field(default=300, ge=10, le=3600)
    horizon_days: int = Field(default=14, ge=1, le=90)
    # Upper bound of slots one availability rule may create over the horizon.
    max_slots_per_rule: int = Field(default=2000, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    # Requests per minute and API key, per worker (0: no limit); bursts of a sixth of it.
    rate_limit_per_minute: int = Field(default=1200, ge=0)

    # Retention of patient data, in days after the booking / MT request is closed.
    booking_retention_days: int = Field(default=365, ge=1)
    mt_request_retention_days: int = Field(default=730, ge=1)
    # The public médecin traitant page (/medecin-traitant): online registrations a territory
    # takes per local day; registrations an hour per client address and per phone number, and
    # status lookups an hour per address (per worker, like every rate limit; 0: no limit).
    mt_public_daily_cap: int = Field(default=200, ge=0)
    mt_public_per_hour: int = Field(default=10, ge=0)
    mt_status_per_hour: int = Field(default=30, ge=0)
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # How long a GP has to answer a médecin traitant proposal before it lapses.
    mt_proposal_days: int = Field(default=7, ge=1, le=90)

    # Webhooks: delivery attempts before a message is dead-lettered, and whether plain http
    # and private addresses are allowed (tests and closed networks only).
    outbox_max_attempts: int = Field(default=8, ge=1, le=30)
    outbox_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_allow_insecure_urls: bool = False

    # Agenda feeds (iCalendar or FHIR Slot URLs of practices' own software): how often each is
    # polled, how long and how big a fetch may be, how many slots one may bring, the retries of
    # a failed fetch, and whether plain http and private addresses are allowed (tests and
    # closed networks only).
    feed_poll_minutes: int = Field(default=15, ge=1, le=24 * 60)
    feed_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    feed_max_bytes: int = Field(default=5_000_000, ge=1024)
    feed_max_slots: int = Field(default=3000, ge=1)
    feed_max_pages: int = Field(default=20, ge=1, le=1000)
    feed_retries: int = Field(default=3, ge=1, le=10)
    feed_retry_base_seconds: float = Field(default=1.0, ge=0)
    feed_allow_insecure_urls: bool = False

    # The national SAS platform: where Appointment notifications go (unset: none are sent),
    # the identifier system of Créneau's appointments, and the mutual-TLS material.
    sas_platform_url: str | None = None
    sas_appointment_system: str | None = None
    sas_platform_cert: Path | None = None
    sas_platform_key: Path | None = None
    sas_platform_ca: Path | None = None

    # Inbound TLS under `creneau serve` (docs/sas-mtls.md): Créneau's certificate and key; the
    # CA bundle client certificates must chain to (IGC-Santé); whether a client certificate is
    # optional (bearer-key clients still connect) or required (a port for the platform only).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    tls_client_cert: Literal["optional", "required"] = "optional"
    # Subjects let in as the national SAS platform, each naming a CN and an OU, separated by
    # ";" (or a JSON list).
    sas_platform_subjects: Annotated[list[SubjectPattern], NoDecode] = []
    # Reverse proxies (addresses or networks, separated by commas) trusted to terminate TLS and
    # pass the verified client certificate's subject, and X-Forwarded-For; the header names.
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = []
    # GET /metrics: open when neither is set; else only to a client address in
    # METRICS_ALLOWED_IPS (networks, comma separated) or to `Authorization: Bearer
    # METRICS_TOKEN`.
    metrics_allowed_ips: Annotated[list[IPvAnyNetwork], NoDecode] = []
    metrics_token: SecretStr | None = None
    tls_proxy_subject_header: str = "X-SSL-Client-S-DN"
    tls_proxy_verify_header: str = "X-SSL-Client-Verify"

    # Web pages: the key signing session cookies (unset: a random one kept in DATA_DIR), and
    # how long a signed-in session lasts.
    session_secret: str | None = None
    session_hours: int = Field(default=12, ge=1, le=24 * 30)

    # The booking page (/agenda/{practitioner_id}) for accounts of the SAS platform: one-time
    # sign-in links sent by e-mail through this SMTP server (unset SMTP_HOST: no link is sent,
    # and the page says so), how long a link lasts, and how many an address may be sent in
    # that time.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    # STARTTLS on a plain port (587); SMTP_TLS for implicit TLS (465).
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    mail_from: str = "Créneau <no-reply@localhost>"
    sign_in_link_minutes: int = Field(default=15, ge=1, le=120)
    sign_in_links_per_window: int = Field(default=3, ge=1, le=50)
    # Pro Santé Connect (OpenID Connect), off while PSC_ISSUER is unset: the issuer (its
    # /.well-known/openid-configuration is read), the client registered with the ANS, the
    # scopes and the authentication level asked for.
    psc_issuer: str | None = None
    psc_client_id: str | None = None
    psc_client_secret: str | None = None
    psc_scopes: str = "openid scope_all"
    psc_acr_values: str | None = "eidas1"

    # Background jobs (materialisation, hold expiry...). Off in tests, which run jobs by hand.
    scheduler_enabled: bool = True

    @field_validator("public_base_url", "psc_issuer")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("sas_platform_subjects", mode="before")
    @classmethod
    def _subjects(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            items = json.loads(text) if text.startswith("[") else text.split(";")
            return [SubjectPattern.parse(item) for item in items if item.strip()]
        return value

    @field_validator("trusted_proxies", "metrics_allowed_ips", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item for item in value.replace(",", " ").split() if item]
        return value

    @model_validator(mode="after")
    def _tls_needs_a_certificate(self) -> Self:
        if (self.tls_key or self.tls_client_ca) and not self.tls_cert:
            raise ValueError("TLS_KEY and TLS_CLIENT_CA need TLS_CERT")
        if self.tls_client_cert == "required" and not self.tls_client_ca:
            raise ValueError("TLS_CLIENT_CERT=required needs TLS_CLIENT_CA")
        if self.psc_issuer and not (self.psc_client_id and self.psc_client_secret):
            raise ValueError("PSC_ISSUER needs PSC_CLIENT_ID and PSC_CLIENT_SECRET")
        if self.smtp_starttls and self.smtp_tls:
            raise ValueError("SMTP_STARTTLS and SMTP_TLS exclude each other")
        return self

    @property
    def psc_enabled(self) -> bool:
        return bool(self.psc_issuer)

    @property
    def appointment_system(self) -> str:
        return self.sas_appointment_system or f"{self.public_base_url}/fhir/Appointment"

    @property
    def problem_base(self) -> str:
        return f"{self.public_base_url}/problems"


@lru_cache
def get_settings() -> Settings:
    return Settings()
