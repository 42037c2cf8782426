"""Single sign-on settings of a network: the OpenID provider, the dashboard's and the CLI's client ids, and
what each group of the provider's groups claim grants here (checked against the network when it is read)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from zhisuan.model.units import parse_duration

URL = r"^https?://[^\s/]+(/\S*)?$"


class SsoGrant(BaseModel):
    """What members of one group are in zhisuan: a network admin, a project's member/viewer/billing, an
    organisation's admin, or an operator of centers."""

    model_config = ConfigDict(extra="forbid")
    admin: bool = False
    role: Literal["member", "viewer", "billing", "operator", "org-admin"] = "member"
    project: str | None = Field(None, max_length=64)
    org: str | None = Field(None, max_length=64)
    centers: list[str] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _one_kind(self) -> SsoGrant:
        named = {"project": bool(self.project), "org": bool(self.org), "centers": bool(self.centers)}
        wants = None if self.admin else {"operator": "centers", "org-admin": "org"}.get(self.role, "project")
        extra = [k for k, given in named.items() if given and k != wants]
        if extra or (wants is not None and not named[wants]):
            raise ValueError("an admin grant names no project, organisation or center" if wants is None else
                             f"a {self.role} grant names its {wants} and nothing else")
        return self


class SsoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issuer: str = Field(max_length=512, pattern=URL, description="the OpenID provider's issuer URL")
    client_id: str = Field(min_length=1, max_length=128, description="the dashboard's client (code flow + PKCE)")
    cli_client_id: str | None = Field(None, max_length=128, description="the CLI's client (device flow)")
    groups_claim: str = Field("groups", min_length=1, max_length=64)
    groups: dict[str, SsoGrant] = Field(default_factory=dict, max_length=1000,
                                        description="group -> grant; the first listed that a person has wins")
    session: float = Field(12 * 3600.0, description="how long a signed-in session's token lasts (e.g. 12h)")

    @field_validator("issuer")
    @classmethod
    def _https(cls, v: str) -> str:
        host = urlsplit(v).hostname or ""
        if urlsplit(v).scheme != "https" and host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("https (plain http only on loopback): the provider's keys are fetched from it")
        return v

    @field_validator("session", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        seconds = parse_duration(v)
        if not 60 <= seconds <= 30 * 86400:
            raise ValueError("between 1m and 30d")
        return seconds
