"""A minimal OpenAI-compatible backend the repo ships, for tests and `bench gateway`: no model — it
answers with the prompt's words back, streams them one per chunk (SSE) and reports `usage` (one token a
word). `python -m zhisuan.gateway.backend --port 8100 --model echo [--no-stream-usage]`.
Real backends (vLLM, SGLang, llama.cpp's server) are started by a service's `run` instead."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


def _words(body: dict[str, Any]) -> list[str]:
    text = body.get("prompt") or ""
    for m in body.get("messages") or []:
        text += " " + str(m.get("content", ""))
    return str(text).split()[:256] or ["ok"]


def make_app(model: str, stream_usage: bool = True) -> Starlette:
    async def models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": model, "object": "model", "owned_by": "zhisuan"}]})

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def complete(request: Request) -> Response:
        body = await request.json()
        words = _words(body)
        chat = request.url.path.endswith("/chat/completions")
        usage = {"prompt_tokens": len(words), "completion_tokens": len(words), "total_tokens": 2 * len(words)}
        if not body.get("stream"):
            text = " ".join(words)
            choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                      if chat else {"index": 0, "text": text, "finish_reason": "stop"})
            return JSONResponse({"id": "x", "object": "chat.completion" if chat else "text_completion",
                                 "created": int(time.time()), "model": model, "choices": [choice], "usage": usage})

        async def events() -> AsyncIterator[bytes]:
            for w in words:
                choice = {"index": 0, "delta": {"content": w + " "}} if chat else {"index": 0, "text": w + " "}
                yield f"data: {json.dumps({'model': model, 'choices': [choice]})}\n\n".encode()
            if stream_usage:
                yield f"data: {json.dumps({'model': model, 'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def embed(request: Request) -> Response:
        body = await request.json()
        words = _words({"prompt": body.get("input", "")})
        vector = [len(w) / 10 for w in words[:8]]
        return JSONResponse({"object": "list", "model": model,
                             "data": [{"object": "embedding", "index": 0, "embedding": vector}],
                             "usage": {"prompt_tokens": len(words), "total_tokens": len(words)}})

    return Starlette(routes=[Route("/v1/models", models), Route("/health", health),
                             Route("/v1/chat/completions", complete, methods=["POST"]),
                             Route("/v1/completions", complete, methods=["POST"]),
                             Route("/v1/embeddings", embed, methods=["POST"])])


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model", default="echo")
    p.add_argument("--no-stream-usage", action="store_true")
    a = p.parse_args()
    uvicorn.run(make_app(a.model, not a.no_stream_usage), host="127.0.0.1", port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
