"""Security defaults: loopback by default, a bearer token for control elsewhere, same origin."""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from emugen.errors import InsecureBinding

TOKEN_ENV = "EMUGEN_WEB_TOKEN"
MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def token_for(host: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The token control endpoints require: none on loopback, else $EMUGEN_WEB_TOKEN (needed)."""
    if is_loopback(host):
        return None
    token = environ.get(TOKEN_ENV, "").strip()
    if len(token) < MIN_TOKEN_LENGTH:
        problem = "is not set" if not token else f"is shorter than {MIN_TOKEN_LENGTH} characters"
        raise InsecureBinding(
            f"refusing to listen on {host}: {TOKEN_ENV} {problem}, so anyone on the network could "
            f"pause, switch or wipe the fleet. Set it (e.g. export {TOKEN_ENV}=$(python -c "
            "'import secrets; print(secrets.token_urlsafe(32))')) or listen on 127.0.0.1"
        )
    return token


def token_problem(authorization: str | None, token: str | None) -> str | None:
    """Why a control request's Authorization header is not accepted (None when it is)."""
    if token is None:
        return None
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return (
            f"this dashboard listens beyond loopback: control endpoints need the header "
            f"'Authorization: Bearer <token>' with the token from {TOKEN_ENV}"
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return f"the bearer token does not match {TOKEN_ENV}"
    return None


def cross_origin(origin: str | None, host: str | None) -> bool:
    """True when a browser says the request comes from another site's page (CSRF)."""
    if origin is None:
        return False
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # e.g. "http://[": not an origin a browser sends; refuse it
        return True
    return netloc.lower() != (host or "").lower()


def hostname(host_header: str) -> str:
    try:
        return urlsplit(f"//{host_header}").hostname or ""
    except ValueError:
        return ""


class LoopbackHosts:
    """ASGI middleware: on loopback, answer only requests addressed to a loopback name.

    A page on another site can make a browser resolve its own name to 127.0.0.1 (DNS
    rebinding) and then read this API as same-origin; its Host header still names that site.
    """

    def __init__(self, app: ASGIApp, extra: Iterable[str] = ()) -> None:
        self.app = app
        self.extra = {h.lower() for h in extra}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            header = Headers(scope=scope).get("host", "")
            name = hostname(header)
            if not (is_loopback(name) or name in self.extra):
                response = JSONResponse(
                    status_code=400,
                    content={
                        "detail": (
                            f"Host {header!r} is not allowed: this dashboard listens on "
                            "loopback only; "
                            "open it as http://127.0.0.1:<port>/ (behind a proxy: emugen web "
                            "--allow-host NAME)"
                        )
                    },
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
