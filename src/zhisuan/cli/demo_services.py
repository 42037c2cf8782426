"""The demo's model-service part: a service deployed over HTTP, its replicas placed by the scheduler on
more than one center, called through the gateway as an OpenAI endpoint (a streamed answer included), its
tokens on the invoice, then stopped."""

from __future__ import annotations

import shutil
import time
from typing import Any

from rich.table import Table

from zhisuan.cli.common import console, fail

SPEC = """name: demo-chat
tenant: {tenant}
kind: service
resources: {{accelerators: A100-80GB:8}}
service: {{model: demo-chat, ready: /health, replicas: {{min: 3, max: 3}}}}
run: exec python3 {script} --port $PORT --model demo-chat
"""


def services_demo(base: str, token: str, tenant: str, step: int) -> None:
    import httpx

    from zhisuan.engines.confine import shared_folder
    from zhisuan.gateway import backend
    from zhisuan.metering.invoice import local_month

    script = shared_folder("demo-") / "backend.py"  # where the replicas' own uids can read it (not /tmp: theirs)
    shutil.copy(backend.__file__, script)
    script.chmod(0o644)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    console.print(f"[bold]{step}.[/] deploying a model service (3 replicas of the repo's minimal OpenAI-compatible "
                  "server, one A100 node each)")
    r = client.post("/v1/services", content=SPEC.format(tenant=tenant, script=script))
    if r.status_code != 201:
        fail(f"the service was refused: {r.text[:300]}")
    sid = r.json()["id"]
    try:
        svc = _until_ready(client, sid, 3)
        t = Table(title="replicas of demo-chat: placed by the scheduler like any job")
        for col in ("replica job", "center/pool", "why (scheduler)"):
            t.add_column(col)
        for job in svc["replicas"]:
            j = client.get(f"/v1/jobs/{job}").json()
            placed = next((h["why"] for h in j["history"] if h["state"] == "scheduled"), "")
            t.add_row(job, f"{j['center']}/{j['pool']}", placed)
        console.print(t)
        console.print(f"[bold]{step + 1}.[/] calling it through the gateway (POST /v1/chat/completions)")
        chat = {"model": "demo-chat", "messages": [{"role": "user", "content": "hello from the demo"}]}
        answer = client.post("/v1/chat/completions", json=chat).json()
        console.print(f"   answer: {answer['choices'][0]['message']['content']!r}, usage {answer['usage']}")
        chunks = []
        with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as s:
            for line in s.iter_lines():
                if line.startswith("data: {"):
                    chunks.append(line)
        console.print(f"   streamed: {len(chunks)} server-sent events relayed chunk by chunk")
        bill = client.get(f"/v1/invoices/{tenant}/{local_month(time.time())}").json()
        for line in bill["services"]:
            console.print(f"   invoice, services: {line['model']}: {line['requests']} requests, "
                          f"{line['prompt_tokens']}+{line['completion_tokens']} tokens, "
                          f"{line['device_hours']:.3f} device-hours, ¥{line['cny']:.2f} "
                          f"(¥{line['cny_per_million_tokens'] or 0:,.0f} per million tokens)")
    finally:
        client.delete(f"/v1/services/{sid}")
        shutil.rmtree(script.parent, ignore_errors=True)


def _until_ready(client: Any, sid: str, n: int, limit: float = 90.0) -> dict[str, Any]:
    end = time.time() + limit
    while time.time() < end:
        svc = next(s for s in client.get("/v1/services").json() if s["id"] == sid)
        if len(svc["ready"]) >= n:
            centers = sorted({r["center"] for r in svc["ready"]})
            console.print(f"   {len(svc['ready'])} replicas ready on {', '.join(centers)}")
            return dict(svc)
        time.sleep(0.5)
    fail(f"the service's replicas did not get ready within {limit:.0f} s")
