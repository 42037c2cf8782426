"""Single sign-on through an OpenID provider: the dashboard by the authorization code flow with PKCE, the CLI
by the device authorization flow. Either way the provider's ID token is verified here — signature against
the keys the provider publishes, issuer, audience (our client), expiry, and the nonce the browser's flow
sent — and the person's groups are mapped to what they are in zhisuan (network.sso.groups, first match).
They then get a session token like any other (a role, a project, an expiry; revocable), named after them on
the audit trail. The provider is asked over HTTP from worker threads, never the event loop."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from zhisuan.control.errors import Forbidden, SignOnRefused, TooMany
from zhisuan.model import Network
from zhisuan.model.sso import SsoGrant, SsoSettings
from zhisuan.store import TokenStore
from zhisuan.store.audit import By
from zhisuan.store.sso import PendingLogins, TooManyLogins

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]
DISCOVERY_TTL = 300.0
MAX_ID_TOKEN = 16_384  # bytes: an ID token longer than this is not one


class SingleSignOn:
    def __init__(self, network: Network, tokens: TokenStore, pending: PendingLogins) -> None:
        assert network.sso is not None
        self.settings: SsoSettings = network.sso
        self.network, self.tokens, self.pending = network, tokens, pending
        self._meta: tuple[float, dict[str, Any]] = (-DISCOVERY_TTL, {})
        self._keys: jwt.PyJWKClient | None = None

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached), checked to name the configured issuer and endpoints."""
        at, meta = self._meta
        if time.time() - at >= DISCOVERY_TTL:
            url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                r = httpx.get(url, timeout=5.0)
                r.raise_for_status()
                meta = r.json()
            except (httpx.HTTPError, ValueError) as e:
                raise SignOnRefused(f"sso: the provider {self.settings.issuer} cannot be reached: {e}") from e
            if not isinstance(meta, dict) or meta.get("issuer") != self.settings.issuer:
                raise SignOnRefused(f"sso: the provider's discovery document does not name the issuer "
                                    f"{self.settings.issuer!r}")
            missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
                       if not isinstance(meta.get(k), str)]
            if missing:
                raise SignOnRefused(f"sso: the provider's discovery document has no {', '.join(missing)}")
            self._meta = (time.time(), meta)
            self._keys = jwt.PyJWKClient(meta["jwks_uri"], cache_keys=True, lifespan=DISCOVERY_TTL, timeout=5)
        return meta

    def config(self) -> dict[str, Any]:
        """What a client needs to sign in (the CLI's device flow talks to the provider itself)."""
        meta = self.metadata()
        return {"enabled": True, "issuer": self.settings.issuer, "client_id": self.settings.client_id,
                "cli_client_id": self.settings.cli_client_id,
                "device_authorization_endpoint": meta.get("device_authorization_endpoint"),
                "token_endpoint": meta.get("token_endpoint"), "scope": self.scope}

    @property
    def scope(self) -> str:
        return f"openid email {self.settings.groups_claim}"

    def start(self, redirect_uri: str, bind: str, now: float) -> tuple[str, str]:
        """(the provider's URL a browser is sent to, the sign-in's state): the code flow with PKCE (S256), a
        state and a nonce. The state goes back to the browser in a cookie as well (the callback must come from
        the browser that started); `bind` comes back in the dashboard's URL (the page that started accepts)."""
        meta = self.metadata()
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        try:
            self.pending.add(state, verifier, nonce, f"/?sso-bind={bind}", now)
        except TooManyLogins as e:
            raise TooMany(str(e)) from None
        query = {"response_type": "code", "client_id": self.settings.client_id, "redirect_uri": redirect_uri,
                 "scope": self.scope, "state": state, "nonce": nonce, "code_challenge": challenge,
                 "code_challenge_method": "S256"}
        return f"{meta['authorization_endpoint']}?{urlencode(query)}", state

    def callback(self, code: str, state: str, browser_state: str, redirect_uri: str, now: float,
                 origin: str) -> tuple[str, str]:
        """The browser back from the provider: (a session token, where to go)."""
        if not state or not secrets.compare_digest(state.encode(), browser_state.encode()):
            raise SignOnRefused("state: this sign-in was not started in this browser: start again")
        found = self.pending.take(state, now)
        if found is None:
            raise SignOnRefused("state: no sign-in under way with this state (expired, used, or not ours): "
                                "start again")
        verifier, nonce, next_path = found
        meta = self.metadata()
        try:
            r = httpx.post(meta["token_endpoint"], timeout=10.0, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": self.settings.client_id, "code_verifier": verifier})
        except httpx.HTTPError as e:
            raise SignOnRefused(f"sso: the provider's token endpoint cannot be reached: {e}") from e
        if r.status_code != 200:
            raise SignOnRefused(f"code: the provider refused it ({r.status_code}: {r.text[:200]})")
        id_token = r.json().get("id_token")
        if not isinstance(id_token, str):
            raise SignOnRefused("id_token: the provider's answer has none")
        claims = self.verify(id_token, self.settings.client_id, nonce)
        return self._session(claims, now, origin, "dashboard"), next_path

    def exchange(self, id_token: str, now: float, origin: str) -> str:
        """The CLI's ID token (from the device flow) for a session token."""
        if not self.settings.cli_client_id:
            raise SignOnRefused("sso: this network names no CLI client (sso.cli_client_id)")
        claims = self.verify(id_token, self.settings.cli_client_id)
        used = "idt:" + hashlib.sha256(id_token.encode()).hexdigest()[:56]
        if not self.pending.spend(used, float(claims["exp"])):
            raise SignOnRefused("id_token: already exchanged for a session (sign in again)")
        return self._session(claims, now, origin, "cli")

    def verify(self, id_token: str, audience: str, nonce: str | None = None) -> dict[str, Any]:
        """The ID token's claims, or SignOnRefused naming what is wrong with it."""
        if len(id_token) > MAX_ID_TOKEN:
            raise SignOnRefused(f"id_token: longer than {MAX_ID_TOKEN} bytes")
        self.metadata()
        assert self._keys is not None
        try:
            key = self._keys.get_signing_key_from_jwt(id_token)
            claims: dict[str, Any] = jwt.decode(
                id_token, key.key, algorithms=[key.algorithm_name] if key.algorithm_name in ALGORITHMS else [],
                audience=audience, issuer=self.settings.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except jwt.ExpiredSignatureError as e:
            raise SignOnRefused("id_token: expired") from e
        except jwt.InvalidAudienceError as e:
            raise SignOnRefused(f"id_token: its audience is not this network's client {audience!r}") from e
        except jwt.InvalidIssuerError as e:
            raise SignOnRefused(f"id_token: not issued by {self.settings.issuer}") from e
        except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError, jwt.PyJWKClientError) as e:
            raise SignOnRefused(f"id_token: not signed by a key of {self.settings.issuer} ({e})") from e
        except (jwt.PyJWTError, TypeError, ValueError) as e:
            raise SignOnRefused(f"id_token: {str(e)[:200]}") from e
        if nonce is not None and not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise SignOnRefused("id_token: its nonce is not the one this sign-in sent")
        return claims

    def grant(self, claims: dict[str, Any]) -> tuple[str, SsoGrant]:
        groups = claims.get(self.settings.groups_claim) or []
        groups = [groups] if isinstance(groups, str) else groups
        if not isinstance(groups, list):
            raise Forbidden(f"{self.settings.groups_claim}: the ID token's claim is not a list of groups")
        for name, grant in self.settings.groups.items():
            if name in groups:
                return name, grant
        shown = ", ".join(str(g)[:40] for g in groups[:10]) or "none"
        raise Forbidden(f"{self.settings.groups_claim}: your groups ({shown}) grant nothing in this network")

    def _session(self, claims: dict[str, Any], now: float, origin: str, where: str) -> str:
        group, grant = self.grant(claims)
        email = claims.get("email") if claims.get("email_verified") is True else None  # unverified: not a name
        person = str(email or claims["sub"])[:60]
        by = By(f"sso {person}"[:80], origin)
        token = self.tokens.issue(grant.project or "", now, grant.admin, f"sso {person}", now + self.settings.session,
                                  by=by, role="member" if grant.admin else grant.role, centers=tuple(grant.centers),
                                  org=grant.org or "")
        self.tokens.audit.record(by, "sign-in", grant.project or grant.org or ",".join(grant.centers) or "network",
                                 now, f"sso ({where}), group {group}")
        return token
