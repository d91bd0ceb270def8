"""The OpenAPI document as the app behaves: its security and every error status it answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from emugen.web.schemas import RESPONSE_PARTS, Problem

PROBLEM = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
EVERYWHERE = {
    400: "Refused: on loopback the Host header must name a loopback address (DNS "
    "rebinding guard), and a Content-Length must be a byte count"
}
WITH_BODY = {413: "The request body is over the size limit (16 KiB)"}
CONTROL = {403: "Cross-origin request: only the dashboard's own page may control the fleet"}
TOKEN = {401: "Missing or wrong 'Authorization: Bearer <EMUGEN_WEB_TOKEN>'"}


def _add(op: dict[str, Any], errors: dict[int, str]) -> None:
    for status, description in errors.items():
        op["responses"].setdefault(str(status), {"description": description, "content": PROBLEM})


def shape(schema: dict[str, Any], token_required: bool) -> dict[str, Any]:
    """`schema` with the error responses the middleware and guards give; the bearer
    requirement only where the app enforces it (off loopback), so clients and fuzzers that
    read the document are told the truth either way."""
    for ops in schema["paths"].values():
        for method, op in ops.items():
            _add(op, EVERYWHERE)
            if method in ("post", "put", "patch"):
                _add(op, WITH_BODY)
            if "control" in op.get("tags", ()):
                _add(op, CONTROL)
                if token_required:
                    _add(op, TOKEN)
            if not token_required:
                op.pop("security", None)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    for part in RESPONSE_PARTS:  # the parts of the read endpoints' answers, documented
        schemas[part.__name__] = part.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas[part.__name__].pop("$defs", None)
    if not token_required:
        components.pop("securitySchemes", None)
    return schema


def install(app: FastAPI, token_required: bool) -> None:
    """Serve the shaped document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = shape(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                ),
                token_required,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
