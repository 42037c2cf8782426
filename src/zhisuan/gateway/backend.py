"""A minimal OpenAI-compatible backend the repo ships, for tests and `bench gateway`: no model — it
answers with the prompt's words back, streams them one per chunk (SSE) and reports `usage` (one token a
word). Standard library only, so a replica job can run it under any uid with the system's python3:
`python3 backend.py --port 8100 --model echo [--no-stream-usage]` (or `-m zhisuan.gateway.backend`).
With an API key (`--api-key`, default $ZHISUAN_SERVICE_KEY, as vLLM's `--api-key`) it answers completions
only to `Authorization: Bearer <key>`: the gateway's calls, not other jobs that find its port.
Real backends (vLLM, SGLang, llama.cpp's server) are started by a service's `run` instead."""

from __future__ import annotations

import argparse
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20


def words_of(body: dict[str, Any]) -> list[str]:
    text = str(body.get("prompt") or body.get("input") or "")
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            text += " " + str(m.get("content", ""))
    return text.split()[:256] or ["ok"]


def handler(model: str, stream_usage: bool, delay: float = 0.0, api_key: str = "") -> type[BaseHTTPRequestHandler]:
    class Backend(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive for whole answers; a stream closes its connection
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _json(self, obj: Any, status: int = 200) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._json({"status": "ok"})
            elif self.path == "/v1/models":
                self._json({"object": "list", "data": [{"id": model, "object": "model", "owned_by": "zhisuan"}]})
            else:
                self._json({"error": {"message": "not found"}}, 404)

        def do_POST(self) -> None:
            if api_key and not hmac.compare_digest(self.headers.get("Authorization", ""), f"Bearer {api_key}"):
                self._json({"error": {"message": "invalid API key", "code": "invalid_api_key"}}, 401)
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY:
                self._json({"error": {"message": "body too large"}}, 413)
                return
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except (ValueError, RecursionError):
                self._json({"error": {"message": "not JSON"}}, 400)
                return
            words = words_of(body if isinstance(body, dict) else {})
            if self.path == "/v1/embeddings":
                self._json({"object": "list", "model": model, "data": [
                    {"object": "embedding", "index": 0, "embedding": [len(w) / 10 for w in words[:8]]}],
                    "usage": {"prompt_tokens": len(words), "total_tokens": len(words)}})
                return
            if self.path not in ("/v1/chat/completions", "/v1/completions"):
                self._json({"error": {"message": "not found"}}, 404)
                return
            chat = self.path == "/v1/chat/completions"
            if delay:
                time.sleep(min(delay, 60.0))
            usage = {"prompt_tokens": len(words), "completion_tokens": len(words), "total_tokens": 2 * len(words)}
            if not body.get("stream"):
                text = " ".join(words)
                choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                          if chat else {"index": 0, "text": text, "finish_reason": "stop"})
                self._json({"id": "x", "object": "chat.completion" if chat else "text_completion",
                            "created": int(time.time()), "model": model, "choices": [choice], "usage": usage})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for w in words:
                choice = {"index": 0, "delta": {"content": w + " "}} if chat else {"index": 0, "text": w + " "}
                self.wfile.write(f"data: {json.dumps({'model': model, 'choices': [choice]})}\n\n".encode())
                self.wfile.flush()
            options = body.get("stream_options")
            if stream_usage and isinstance(options, dict) and options.get("include_usage") is True:  # as vLLM
                self.wfile.write(f"data: {json.dumps({'model': model, 'choices': [], 'usage': usage})}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

    return Backend


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model", default="echo")
    p.add_argument("--no-stream-usage", action="store_true")
    p.add_argument("--delay", type=float, default=0.0, help="seconds each completion takes (load tests)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 on a remote node)")
    p.add_argument("--api-key", default=os.environ.get("ZHISUAN_SERVICE_KEY", ""),
                   help="answer completions only with this bearer key (default: $ZHISUAN_SERVICE_KEY)")
    a = p.parse_args()
    server = ThreadingHTTPServer((a.host, a.port), handler(a.model, not a.no_stream_usage, a.delay, a.api_key))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
