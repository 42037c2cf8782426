"""What each role may do, and what each API route needs.

A token acts for a tenant with a role: `member` submits, cancels and sees the tenant's jobs, data, services and
bills; `viewer` sees the jobs, data and services, not the bills; `billing` sees only the invoices and funds; an
`operator` token acts for named centers, not a tenant: their pools, load, health and anonymised jobs, and drains;
an `org-admin` token administers an organisation: its projects' members and budgets; an admin token (role
`admin`) runs the network.
Every route of the API names its need here (`NEEDS`, one table, checked where the caller is identified); a route
that names none is refused at start, so none can be added without saying who may call it.
"""

from __future__ import annotations

from typing import Literal

from zhisuan.store.tokens import Principal

Need = Literal["self", "read", "write", "bill", "operate", "org", "admin"]

MAY: dict[str, frozenset[str]] = {
    "admin": frozenset({"self", "read", "write", "bill", "operate", "org", "admin"}),
    "member": frozenset({"self", "read", "write", "bill"}),
    "viewer": frozenset({"self", "read"}),
    "billing": frozenset({"self", "bill"}),
    "operator": frozenset({"self", "operate"}),  # of its centers only (control/operator.py checks which)
    "org-admin": frozenset({"self", "org"}),  # of its organisation only (control/orgs.py checks which)
}

WHAT: dict[str, str] = {"read": "read jobs, data or services", "write": "change anything",
                        "bill": "read bills", "admin": "administer the network", "self": "sign in",
                        "operate": "operate a center", "org": "administer an organisation"}

# (method, route path) -> what calling it needs. The gateway's model calls spend money: they need `write`.
NEEDS: dict[tuple[str, str], Need] = {
    ("GET", "/v1/whoami"): "self",
    ("POST", "/v1/session"): "self",
    ("POST", "/v1/jobs"): "write",
    ("GET", "/v1/jobs"): "read",
    ("GET", "/v1/jobs/{job_id}"): "read",
    ("POST", "/v1/jobs/{job_id}/cancel"): "write",
    ("GET", "/v1/jobs/{job_id}/logs"): "read",
    ("POST", "/v1/jobs/{job_id}/usage"): "write",
    ("GET", "/v1/jobs/{job_id}/candidates"): "read",
    ("GET", "/v1/jobs/{job_id}/transfers"): "read",
    ("POST", "/v1/quote"): "read",
    ("GET", "/v1/invoices/{tenant}/{month}.csv"): "bill",
    ("GET", "/v1/invoices/{tenant}/{month}"): "bill",
    ("GET", "/v1/reports/utilization"): "read",
    ("GET", "/v1/centers"): "read",
    ("GET", "/v1/overview"): "read",
    ("GET", "/v1/control-plane"): "read",
    ("GET", "/v1/tenants"): "read",
    ("GET", "/v1/sim-reports"): "read",
    ("POST", "/v1/datasets"): "write",
    ("PUT", "/v1/datasets/{name}/files/{path:path}"): "write",
    ("POST", "/v1/datasets/{name}/commit"): "write",
    ("GET", "/v1/datasets"): "read",
    ("GET", "/v1/datasets/{ref}"): "read",
    ("DELETE", "/v1/datasets/{name}"): "write",
    ("PUT", "/v1/datasets/{name}/sharing"): "write",
    ("PUT", "/v1/datasets/{name}/rule"): "write",
    ("POST", "/v1/datasets/{name}/replicas"): "write",
    ("POST", "/v1/services"): "write",
    ("GET", "/v1/services"): "read",
    ("DELETE", "/v1/services/{service_id}"): "write",
    ("GET", "/v1/models"): "read",
    ("POST", "/v1/chat/completions"): "write",
    ("POST", "/v1/completions"): "write",
    ("POST", "/v1/embeddings"): "write",
    ("POST", "/v1/tokens"): "admin",
    ("GET", "/v1/tokens"): "admin",
    ("DELETE", "/v1/tokens/{token_id}"): "admin",
    ("GET", "/v1/audit"): "admin",
    ("POST", "/v1/center-tokens"): "admin",
    ("GET", "/v1/center-tokens"): "admin",
    ("DELETE", "/v1/center-tokens/{token_id}"): "admin",
    ("GET", "/v1/agents/{center}/starts"): "admin",
    ("GET", "/v1/agents"): "admin",
    ("GET", "/v1/funds"): "bill",
    ("GET", "/v1/funds/{tenant}"): "bill",
    ("GET", "/v1/funds/{tenant}/ledger"): "bill",
    ("PUT", "/v1/funds/{tenant}"): "admin",
    ("POST", "/v1/funds/{tenant}/topups"): "admin",
    ("GET", "/v1/reconcile/{month}"): "admin",
    ("GET", "/v1/operator/centers"): "operate",
    ("GET", "/v1/operator/centers/{center}"): "operate",
    ("POST", "/v1/operator/centers/{center}/drain"): "operate",
    ("POST", "/v1/operator/centers/{center}/undrain"): "operate",
    ("GET", "/v1/orgs"): "org",
    ("GET", "/v1/orgs/{org}"): "org",
    ("POST", "/v1/orgs/{org}/members"): "org",
    ("DELETE", "/v1/orgs/{org}/members/{member_id}"): "org",
    ("PUT", "/v1/orgs/{org}/projects/{project}/budget"): "org",
}


def role_of(who: Principal) -> str:
    return "admin" if who.admin else who.role


def refusal(who: Principal, method: str, path: str) -> str | None:
    """Why `who` may not call the route, or None when it may."""
    need = NEEDS.get(("GET" if method == "HEAD" else method, path))
    role = role_of(who)
    if need is None:
        return f"{method} {path} names no role that may call it"
    if need not in MAY.get(role, frozenset()):
        return f"{'an' if role[:1] in 'aeiou' else 'a'} {role} token may not {WHAT[need]}"
    return None
