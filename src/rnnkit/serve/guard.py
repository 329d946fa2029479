"""The door of the server, as plain ASGI middleware in front of the app: the bearer token and
the body cap, both checked before any route or parser sees the request.

- **Token.** With a token configured, every path but ``/health`` needs
  ``Authorization: Bearer <token>``; the comparison is :func:`hmac.compare_digest` (constant
  time). A missing or wrong token is a 401 JSON error; the body is never read.
- **Body cap.** A declared ``Content-Length`` over the cap is refused at once; otherwise (also
  for chunked uploads, which declare no length) the body is read here, counting bytes as
  they arrive, and refused as soon as it passes the cap. The app then receives the body that
  was read, so parsers never see more than the cap. Refusals are 413 JSON errors naming
  ``--max-body-mb``.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Awaitable, Callable, Dict, List, Optional

Scope = Dict[str, Any]
Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OPEN_PATHS = frozenset({"/health"})
#: after refusing an oversize body, read (and drop) up to this much more of it so the client
#: gets to read the 413 instead of a reset connection; beyond it the connection just closes
DRAIN_BYTES = 64 * 1024 * 1024


async def send_json(send: Send, status: int, body: Dict[str, Any], headers: Optional[List[tuple]] = None) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


def error_body(status: int, message: str, limit: Optional[str] = None) -> Dict[str, Any]:
    out: Dict[str, Any] = {"error": message, "status": status}
    if limit:
        out["limit"] = limit
    return out


class Guard:
    """ASGI middleware: bearer token (all paths but /health) and the request-body cap."""

    def __init__(self, app: Callable, token: Optional[str], max_body_bytes: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.token is not None and scope["path"] not in OPEN_PATHS and not self._authorized(scope):
            await send_json(send, 401, error_body(401, "this server needs a token: send the header "
                                                  "'Authorization: Bearer <token>' (the contents of --token-file)"),
                            [(b"www-authenticate", b"Bearer")])
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = await self._read_capped(scope, receive, send)
        if body is None:
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorized(self, scope: Scope) -> bool:
        values = [v for k, v in scope["headers"] if k == b"authorization"]
        if len(values) != 1:
            return False
        scheme, _, given = values[0].partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token or b"")

    async def _refuse_large(self, send: Send, size: str) -> None:
        mb = self.max_body / (1024 * 1024)
        await send_json(send, 413, error_body(413, f"request body {size} is over the limit of {mb:g} MB "
                                              f"(--max-body-mb)", limit="max_body_mb"), [(b"connection", b"close")])

    async def _read_capped(self, scope: Scope, receive: Receive, send: Send) -> Optional[bytes]:
        declared = [v for k, v in scope["headers"] if k == b"content-length"]
        if declared:
            try:
                n = int(declared[0])
            except ValueError:
                await send_json(send, 400, error_body(400, "malformed Content-Length header"))
                return None
            if n > self.max_body:
                await self._drain(receive, n)
                await self._refuse_large(send, f"of {n} bytes")
                return None
        chunks: List[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_body:
                await self._drain(receive, None if not message.get("more_body") else DRAIN_BYTES)
                await self._refuse_large(send, f"of more than {self.max_body} bytes")
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _drain(self, receive: Receive, declared: Optional[int]) -> None:
        if declared is None or declared > DRAIN_BYTES:
            return
        got = 0
        while got < declared:
            message = await receive()
            if message["type"] != "http.request":
                return
            got += len(message.get("body", b""))
            if not message.get("more_body"):
                return
