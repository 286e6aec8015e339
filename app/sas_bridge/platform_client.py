"""The HTTP client towards the national SAS platform: mutual TLS (TLS 1.2+), the platform's
CA, Créneau's certificate and key, all from the settings."""

from __future__ import annotations

import ssl

import httpx

from app.config import Settings


def tls_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(settings.sas_platform_ca) if settings.sas_platform_ca else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.sas_platform_cert is not None:
        context.load_cert_chain(
            str(settings.sas_platform_cert),
            str(settings.sas_platform_key) if settings.sas_platform_key else None,
        )
    return context


def platform_client(settings: Settings) -> httpx.AsyncClient | None:
    if not settings.sas_platform_url:
        return None
    verify: ssl.SSLContext | bool = True
    if settings.sas_platform_url.startswith("https://"):
        verify = tls_context(settings)
    return httpx.AsyncClient(timeout=httpx.Timeout(settings.webhook_timeout_seconds), verify=verify)
