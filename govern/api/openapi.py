"""GET /openapi.json: the OpenAPI 3.1 document, generated from the declared endpoints and the
same schemas that validate their bodies."""

from __future__ import annotations

import re

from govern.api import OPERATIONS, endpoint

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}


def _path(rule: str) -> tuple[str, list[str]]:
    params = re.findall(r"<(?:\w+:)?(\w+)>", rule)
    return "/api/v1" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule), params


def document() -> dict:
    paths: dict = {}
    schemas: dict = {"Error": ERROR}
    for op in OPERATIONS:
        path, params = _path(op.rule)
        parameters = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "integer"}}
            for p in params
        ]
        parameters += [
            {"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
            for q in op.query
        ]
        error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        responses = {
            str(op.status): {"description": "success", "content": {op.produces: {"schema": {}}}}
        }
        for code, text in (
            (400, "bad input"),
            (401, "not signed in"),
            (403, "denied by policy"),
            (404, "not found"),
            (409, "not in a state that allows this"),
        ):
            if op.public and code in (401, 403):
                continue
            responses[str(code)] = {"description": text, "content": error_ref}
        operation = {
            "operationId": op.endpoint,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": parameters,
            "responses": responses,
            "security": []
            if op.public
            else [{"bearer": []}]
            if op.holder
            else [{"bearer": []}, {"session": []}],
        }
        if op.body is not None:
            schemas[op.body.name] = op.body.openapi()
            ref = {"$ref": f"#/components/schemas/{op.body.name}"}
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref}},
            }
        paths.setdefault(path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "govern",
            "version": "1",
            "description": "Confidentiality and data-access governance",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }


@endpoint("/openapi.json", summary="This document", tag="meta", public=True)
def openapi_document(ctx):
    return document()
