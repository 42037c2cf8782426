"""What the API answers with: jobs, candidates and problems (RFC 7807) as JSON-ready values."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

from zhisuan.scheduler import Candidate
from zhisuan.scheduler.explain import margin
from zhisuan.store import JobRecord

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


Say = Callable[[str | None], str | None]  # a server sentence in the caller's language


def _same(text: str | None) -> str | None:
    return text


def job_json(r: JobRecord, say: Say = _same) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "tenant": r.tenant, "state": r.state.value, "priority": r.priority,
            "submitted_at": r.submitted_at, "updated_at": r.updated_at, "center": r.center, "pool": r.pool,
            "nodes": list(r.nodes), "devices": [list(d) for d in r.devices], "exit_code": r.exit_code,
            "reason": say(r.reason), "attempts": r.attempts, "wait_reason": say(r.wait_reason),
            "expected_start": r.expected_start, "inputs": dict(r.spec.inputs)}


def candidate_json(c: Candidate, say: Say = _same) -> dict[str, Any]:
    return {"center": c.center, "pool": c.pool, "score": None if math.isnan(c.score) else round(c.score, 2),
            "expected_start_s": None if math.isinf(c.start_delay) else c.start_delay, "cny": round(c.cost, 2),
            "kg_co2": round(c.carbon, 3), "runtime_s": c.runtime, "rejected_by": list(c.rejected),
            "staging_s": c.staging, "data": c.data,
            "waits_for": [say(w) for w in c.waits_for],
            "parts": [{"score": x.name, "raw": x.raw, "normalised": round(x.score, 2), "weight": x.weight,
                       "contribution": round(x.contribution, 2)} for x in c.parts]}


def candidates_json(job: str, candidates: list[Candidate], say: Say = _same) -> dict[str, Any]:
    """Ranked candidates with each one's score parts, and the winner's margin in words."""
    return {"job": job, "candidates": [candidate_json(c, say) for c in candidates], "margin": say(margin(candidates))}
