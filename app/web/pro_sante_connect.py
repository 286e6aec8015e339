"""Pro Santé Connect (the ANS's OpenID Connect provider for health professionals), with
authlib: the authorisation-code flow with state, nonce and PKCE (S256), the ID token checked
against the provider's keys (issuer, audience, expiry, nonce), then userinfo.

PSC's userinfo (and ID token) carry `SubjectNameID`, the professional's national identifier
(IDNPS: `8` + RPPS for RPPS holders), besides `given_name`, `family_name` and the
`SubjectRefPro` exercise details; `sub` is PSC's own subject. The regulator account is
matched by `SubjectNameID` against the national identifier the SAS platform gave it."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.errors import JoseError

from app.config import Settings

with warnings.catch_warnings():
    # authlib 1.9 prefers the httpx2 package and warns when it falls back on httpx, which the
    # rest of Créneau uses; that fallback is supported.
    import authlib.deprecate  # noqa: F401 - it sets its warnings to "always": overridden here

    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, OAuthError

log = logging.getLogger(__name__)

NATIONAL_ID_CLAIM = "SubjectNameID"


class ProviderError(Exception):
    """PSC could not be reached, or answered something that does not check out."""


@dataclass(frozen=True)
class Started:
    url: str
    state: str
    nonce: str
    code_verifier: str


def client(settings: Settings) -> Any:
    """The registered PSC client (authlib's Starlette OAuth 2 app), or None when PSC is off."""
    if not settings.psc_enabled:
        return None
    oauth = OAuth()
    return oauth.register(
        "psc",
        client_id=settings.psc_client_id,
        client_secret=settings.psc_client_secret,
        server_metadata_url=f"{settings.psc_issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": settings.psc_scopes,
            "code_challenge_method": "S256",
            "timeout": 10.0,
        },
    )


def redirect_uri(settings: Settings) -> str:
    return f"{settings.public_base_url}/agenda/connexion/psc/retour"


async def start(psc: Any, settings: Settings) -> Started:
    extra = {"acr_values": settings.psc_acr_values} if settings.psc_acr_values else {}
    try:
        rv = await psc.create_authorization_url(redirect_uri(settings), **extra)
    except (httpx.HTTPError, OAuthError, ValueError) as exc:
        raise ProviderError(f"PSC discovery failed: {type(exc).__name__}") from exc
    return Started(rv["url"], rv["state"], rv["nonce"], rv["code_verifier"])


async def finish(psc: Any, settings: Settings, code: str, nonce: str, code_verifier: str) -> str:
    """Exchange the code (with the PKCE verifier), check the ID token and read userinfo:
    the national identifier of the person who signed in."""
    try:
        token = await psc.fetch_access_token(
            redirect_uri=redirect_uri(settings), code=code, code_verifier=code_verifier
        )
        claims = await psc.parse_id_token(token, nonce=nonce)
        if claims is None:
            raise ProviderError("no ID token in PSC's answer")
        userinfo = await psc.userinfo(token=token)
    except (httpx.HTTPError, OAuthError, JoseError, ValueError, KeyError) as exc:
        raise ProviderError(f"PSC sign-in failed: {type(exc).__name__}") from exc
    if userinfo.get("sub") != claims.get("sub"):  # OIDC Core 5.3.2
        raise ProviderError("userinfo is not about the ID token's subject")
    national_id = userinfo.get(NATIONAL_ID_CLAIM) or claims.get(NATIONAL_ID_CLAIM)
    if not isinstance(national_id, str) or not national_id.strip():
        raise ProviderError(f"PSC sent no {NATIONAL_ID_CLAIM}")
    return national_id.strip()
