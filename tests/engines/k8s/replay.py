"""A loopback HTTP server that answers Kubernetes API requests from fixture files and keeps what it
was sent, so the real `kubernetes` client (HTTP, JSON, model classes) is exercised without a cluster."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return json.loads(text) if name.endswith(".json") else text


class Replay:
    """Routes are (method, path regex, status, body); the first match answers. `sent` keeps requests."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], int, Any]] = []
        self.sent: list[tuple[str, str, Any]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                replay.sent.append((self.command, self.path, body))
                path = self.path.split("?")[0]
                for method, pattern, status, answer in replay.routes:
                    if method == self.command and pattern.fullmatch(path):
                        data = answer(body) if callable(answer) else answer
                        raw = data.encode() if isinstance(data, str) else json.dumps(data).encode()
                        self.send_response(status)
                        self.send_header("Content-Type", "text/plain" if isinstance(data, str) else "application/json")
                        self.send_header("Content-Length", str(len(raw)))
                        self.end_headers()
                        self.wfile.write(raw)
                        return
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def on(self, method: str, path: str, answer: Any, status: int = 200) -> None:
        self.routes.insert(0, (method, re.compile(path), status, answer))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
