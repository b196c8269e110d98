"""GET /openapi.json: the OpenAPI 3.1 document, generated from the declared endpoints and the
same schemas that validate their bodies."""

from __future__ import annotations

import re

from govern.api import OPERATIONS, endpoint
from govern.jsontext import MAX_DEPTH
from govern.schema import MAX_ID

DESCRIPTION = f"""Confidentiality and data-access governance.

Bad input is answered 400 with an `error` envelope whose `field` names the first bad field or
query parameter; nothing is changed. Integers are 64-bit; a row id (in a path or in `item_ids`)
is 1 to {MAX_ID}. A path id outside that range (or not a number) cannot name anything and is
answered 404 `not_found`, like an id that names nothing; in a body it is 400 naming the field.
Text refuses control characters (multi-line free text keeps tab, line feed and carriage
return), lone surrogates and unassigned code points; names, titles and third parties also
refuse bidirectional override and isolate characters (U+202A-U+202E, U+2066-U+2069). A JSON
body must be UTF-8, nested at most {MAX_DEPTH} deep. A 500 has the code `internal_error` and
carries the request's id (also in the `X-Request-Id` header); only a bug causes one."""

ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
# What each query parameter takes; a value outside it is answered 400 naming the parameter.
QUERY_SCHEMAS = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
    "cursor": {"type": "integer", "minimum": 1, "maximum": 10**12},
    "since": {"type": "string", "format": "date-time"},
    "until": {"type": "string", "format": "date-time"},
    "decision": {"type": "string", "enum": ["allow", "deny"]},
    "format": {"type": "string", "enum": ["csv", "jsonl"]},
    "actor": {"type": "string", "maxLength": 200},
}

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string", "description": "English text"},
                "key": {
                    "type": "string",
                    "description": "the message key (govern.messages), for a client's own words",
                },
                "params": {"type": "object", "description": "the key's named parameters"},
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
            {"name": p, "in": "path", "required": True, "schema": dict(ID)} for p in params
        ]
        parameters += [
            {
                "name": q,
                "in": "query",
                "required": False,
                "schema": dict(QUERY_SCHEMAS.get(q, {"type": "string", "maxLength": 200})),
            }
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
            "description": DESCRIPTION,
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
