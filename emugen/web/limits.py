"""Request body limit: a control body is a few bytes, so anything large is refused unread.

Also the fleet stamp: every response of a dashboard that `emugen up` started names its fleet.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 16 * 1024  # {"mode": "production"} is 22 bytes


def _too_large(size: int | None, limit: int) -> JSONResponse:
    got = "of unknown size" if size is None else f"of {size:,} bytes"
    return JSONResponse(
        status_code=413,
        content={
            "detail": (
                f"request body {got} is over the {limit:,}-byte limit: control "
                "endpoints take a small "
                'JSON object such as {"mode": "production"}'
            )
        },
    )


def _bad_length(value: str) -> JSONResponse:
    return JSONResponse(
        status_code=400,
        content={
            "detail": (
                f"Content-Length {value[:40]!r} is not a byte count (a non-negative integer)"
            )
        },
    )


class BodyLimit:
    """ASGI middleware: a declared Content-Length over `limit` gets a 413 before any byte of
    the body is read; a body without one is read up to `limit` and refused beyond it."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _bad_length(declared)(scope, receive, send)
                return
            if int(declared) > self.limit:
                await _too_large(int(declared), self.limit)(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server stops at the declared length
            return
        if scope["method"] in ("GET", "HEAD"):  # no body expected (and SSE needs `receive`)
            await self.app(scope, receive, send)
            return
        body = await self._read(receive)
        if body is None:
            await _too_large(None, self.limit)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (the rest is never buffered)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # the client left; the app sees an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` that hands the app the buffered body first, then defers to the server."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class FleetStamp:
    """ASGI middleware: every HTTP response carries `X-Emugen-Fleet: <fleet_id>`, the id that
    `emugen up` made for this run, so it can tell its own dashboard from another on the port."""

    def __init__(self, app: ASGIApp, fleet_id: str) -> None:
        self.app, self.stamp = app, (b"x-emugen-fleet", fleet_id.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.stamp]}
            await send(message)

        await self.app(scope, receive, stamped)
