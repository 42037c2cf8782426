"""Organisations and their projects: an organisation admin sees its projects — members (people, each a
token with a role on a project), funds with burn rate and the day they run out — adds and removes members
and sets budgets. Top-ups stay with the network's admins (money paid in is their record)."""

from __future__ import annotations

from typing import Any

from zhisuan.control.errors import Conflict, Forbidden, NotFound, TooMany
from zhisuan.control.funds import Funds
from zhisuan.model import Network, SpecError
from zhisuan.store import Principal, TokenStore
from zhisuan.store.audit import By
from zhisuan.store.tokens import TokenInfo, token_id

MEMBER_ROLES = ("member", "viewer", "billing")
MAX_MEMBERS = 1000  # active tokens of one project an organisation's admin may hold out


def member_json(t: TokenInfo) -> dict[str, Any]:
    return {"id": t.id, "project": t.tenant, "role": t.role, "person": t.label, "created_at": t.created_at,
            "expires_at": t.expires_at}


class Organisations:
    def __init__(self, network: Network, tokens: TokenStore, funds: Funds) -> None:
        self.network, self.tokens, self.funds = network, tokens, funds

    def _org(self, who: Principal, org: str) -> list[str]:
        if not who.admin and not (who.role == "org-admin" and who.org == org):
            raise Forbidden(f"organisation: you administer {who.org or 'no organisation'}, not {org!r}")
        projects = self.network.orgs().get(org)
        if projects is None:
            raise NotFound(org, "organisation")
        return projects

    def visible(self, who: Principal) -> list[str]:
        return [o for o in self.network.orgs() if who.admin or (who.role == "org-admin" and who.org == o)]

    def members(self, projects: list[str], now: float) -> list[TokenInfo]:
        return [t for t in self.tokens.list() if t.tenant in projects and t.role in MEMBER_ROLES and not t.admin
                and t.revoked_at is None and (t.expires_at is None or t.expires_at > now)]

    def page(self, who: Principal, org: str, now: float) -> dict[str, Any]:
        """An organisation's page: its projects with quota, members and funds (burn rate, forecast)."""
        projects = self._org(who, org)
        standing = {s["tenant"]: s for s in self.funds.show(Principal("", True), now) if s["tenant"] in projects}
        decl = next((o for o in self.network.organisations if o.name == org), None)
        people = self.members(projects, now)
        return {"name": org, "name_zh": decl.name_zh if decl else "",
                "projects": [{"name": p, "quota_devices": self.network.tenant(p).quota_devices,
                              "weight": self.network.tenant(p).weight, "funds": standing.get(p),
                              "members": [member_json(t) for t in people if t.tenant == p]} for p in projects]}

    def add_member(self, who: Principal, org: str, project: str, role: str, person: str, now: float,
                   expires_at: float | None) -> dict[str, Any]:
        """A person joins a project with a role: a token for them, shown once. The same person with the same
        role on the same project twice is refused (409)."""
        projects = self._org(who, org)
        if project not in projects:
            raise SpecError([("project", f"no project {project!r} in organisation {org}")])
        if role not in MEMBER_ROLES:
            raise SpecError([("role", f"one of {', '.join(MEMBER_ROLES)}, got {role!r}")])
        if not person.strip():
            raise SpecError([("person", "who the member is (a name or an e-mail address)")])
        members = self.members([project], now)
        if any(t.role == role and t.label == person for t in members):
            raise Conflict(f"{person} is already a {role} of project {project}")
        if len(members) >= MAX_MEMBERS:
            raise TooMany(f"project {project} has {MAX_MEMBERS} members; remove one first")
        token = self.tokens.issue(project, now, False, person, expires_at, by=By(who.actor, who.origin), role=role)
        info = next(t for t in self.tokens.list() if t.id == token_id(token))
        return {**member_json(info), "token": token}

    def remove_member(self, who: Principal, org: str, member_id: str, now: float) -> dict[str, Any]:
        projects = self._org(who, org)
        if not any(t.id == member_id for t in self.members(projects, now)):
            raise NotFound(member_id, "member")
        info = self.tokens.revoke(member_id, now, by=By(who.actor, who.origin))
        if info is None:
            raise NotFound(member_id, "member")
        return member_json(info)

    def budget(self, who: Principal, org: str, project: str, budget_fen: int | bool | None, at_zero: str | None,
               now: float) -> dict[str, Any]:
        """A project's monthly budget (and what happens at zero), set by its organisation's admin."""
        if project not in self._org(who, org):
            raise SpecError([("project", f"no project {project!r} in organisation {org}")])
        return self.funds.set_budget(By(who.actor, who.origin), project, now, budget_fen, at_zero)
