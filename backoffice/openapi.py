"""The back office's JSON API described in OpenAPI 3.0.3, served at ``GET /api/openapi.json``: what staff
integrations and payment providers call, and what schemathesis tries in CI (tests/backoffice/test_openapi.py).

Each API module keeps its own part beside its routes, ``OPENAPI = {"paths": {...}, "schemas": {...}}``
built with the helpers here, and ``backoffice.app`` passes the parts to ``mount``: adding an API (handoffs,
returns) is one more argument there. Two parts that name the same path or schema are refused at start.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from comanda.errors import ConfigError

Spec = Dict[str, Any]

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
}
# Statuses every route of a part may answer, besides its own.
COMMON = {413: "The request body is larger than COMANDA_BACKOFFICE_MAX_BODY_BYTES."}
STAFF_TOKEN: List[Dict[str, List[str]]] = [{"staffToken": []}]
# Where the JSON API lives: what has no route there is answered {"error": …} too (backoffice.app).
JSON_PREFIXES = ("/api/", "/webhooks/")


def ref(schema: str) -> Spec:
    return {"$ref": f"#/components/schemas/{schema}"}


def json_body(schema: Spec, description: str = "") -> Spec:
    return {"required": True, "description": description, "content": {"application/json": {"schema": schema}}}


def operation(
    summary: str,
    ok: Spec,
    errors: Dict[int, str],
    *,
    body: Optional[Spec] = None,
    parameters: Sequence[Spec] = (),
    staff: bool = True,
    tag: str,
    links: Optional[Spec] = None,
    operation_id: Optional[str] = None,
) -> Spec:
    """One operation: its 200 answer (a JSON schema) and the error statuses it may answer (all JSON
    ``{"error": …}``); staff operations need a personal token and may answer 401."""
    statuses = {**errors, **COMMON, **({401: "No valid personal token."} if staff else {})}
    spec: Spec = {
        "summary": summary,
        "tags": [tag],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ok}}},
            **{
                str(status): {"description": why, "content": {"application/json": {"schema": ref("Error")}}}
                for status, why in sorted(statuses.items())
            },
        },
    }
    if operation_id:
        spec["operationId"] = operation_id
    if links:
        spec["responses"]["200"]["links"] = links
    if parameters:
        spec["parameters"] = list(parameters)
    if body is not None:
        spec["requestBody"] = body
    if staff:
        spec["security"] = STAFF_TOKEN
    else:
        spec["security"] = []
    return spec


def path_id(name: str, description: str) -> Spec:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    }


def query(name: str, description: str, schema: Optional[Spec] = None) -> Spec:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


HEALTH: Spec = {
    "paths": {
        "/health": {
            "get": operation(
                "Whether this back office is up (load balancers and `comanda run` ask it).",
                {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
                {},
                staff=False,
                tag="platform",
            )
        }
    },
    "schemas": {},
}


def document(parts: Iterable[Spec]) -> Spec:
    paths: Spec = {}
    schemas: Spec = {"Error": ERROR}
    for part in parts:
        for into, items in ((paths, part["paths"]), (schemas, part.get("schemas", {}))):
            clash = set(into) & set(items)
            if clash:
                raise ConfigError(f"two OpenAPI parts describe {sorted(clash)}")
            into.update(items)
    paths["/api/openapi.json"] = {
        "get": operation("This description.", {"type": "object"}, {}, staff=False, tag="platform")
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Comanda back office API",
            "version": "1",
            "description": "Staff order queue (personal tokens: `comanda staff token EMAIL`) and payment "
            'providers\' webhooks. Every error is JSON `{"error": …}` in the status the table names.',
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "staffToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A staff member's personal token (cst_…), acting with their stores.",
                }
            },
        },
    }


def mount(app: Sanic, *parts: Spec) -> None:
    """Serve the description of these parts (and /health) at /api/openapi.json."""
    spec = document([HEALTH, *parts])
    bp = Blueprint("openapi")

    @bp.get("/api/openapi.json")
    async def openapi(_request: Request) -> HTTPResponse:
        return response.json(spec)

    app.blueprint(bp)


def nullable(schema: Spec) -> Spec:
    return {**schema, "nullable": True}


def strings(*names: str) -> Dict[str, Spec]:
    return {name: {"type": "string"} for name in names}


def obj(properties: Dict[str, Spec], required: Optional[List[str]] = None) -> Spec:
    return {
        "type": "object",
        "required": required if required is not None else list(properties),
        "properties": properties,
    }
