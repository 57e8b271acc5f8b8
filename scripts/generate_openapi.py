#!/usr/bin/env python3
"""Build api/openapi.yaml (OpenAPI 3.1) from the resolvers themselves: the jobs API's and the callback's.

Powertools' OpenAPIMerge joins the two; the callback route (a resolver without validation, whose
token is in the query) is then described by hand, and Powertools' default 422 validation responses
are replaced by the API's own error shape. `--check` exits 1 when the committed file differs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "api" / "openapi.yaml"
for folder in ("layers/common", "functions/api", "functions/callback"):
    sys.path.insert(0, str(ROOT / folder))
for name, value in {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "swapdrop",
    "POWERTOOLS_METRICS_NAMESPACE": "Swapdrop",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(name, value)

import yaml  # noqa: E402
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge  # noqa: E402
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn  # noqa: E402

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
CALLBACK_MESSAGE = {
    "title": "CallbackMessage",
    "type": "object",
    "properties": {
        "message": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}, "description": "400: every problem found."},
    },
    "required": ["message"],
    "description": "The callback route's refusals (their shape predates the jobs API and is kept for the relays).",
}
CALLBACK_APPLIED = {
    "title": "CallbackApplied",
    "type": "object",
    "properties": {
        "jobId": {"type": "string"},
        "status": {"$ref": "#/components/schemas/JobStatus"},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "changed": {"type": "boolean", "description": "False for a duplicate or stale snapshot."},
    },
    "required": ["jobId", "status", "progress", "changed"],
    "description": "The job after the snapshot was applied.",
}
GATEWAY_MESSAGE = {
    "title": "GatewayMessage",
    "type": "object",
    "properties": {"message": {"type": "string", "examples": ["Forbidden"]}},
    "required": ["message"],
    "description": "API Gateway's own refusal, sent before the function runs (not the API's error shape).",
}
GATEWAY_REFUSALS = {
    "sigv4": ("403", "API Gateway's IAM authorizer refused the request: no, wrong or expired SigV4 signature"),
    "jwt": ("401", "The JWT API's authorizer refused the request: no, expired or invalid token"),
}


def build() -> dict[str, Any]:
    import api_handler
    import callback_handler

    schemes = dict(api_handler.SECURITY_SCHEMES)
    schemes["callbackToken"] = APIKey(
        name="token", in_=APIKeyIn.query, description="The per-job token Swapdrop put in the notifyHook URL."
    )
    merge = OpenAPIMerge(
        title="Swapdrop jobs API",
        version="1",
        description="Start, watch, list, cancel and retry face swaps. Every error of the jobs API is "
        "{error: {code, message, details}}. IAM (SigV4) on ApiUrl; JWT bearer on JwtApiUrl when configured.",
        security_schemes=schemes,
        on_conflict="error",
    )
    merge.add_schema(api_handler.app.get_openapi_schema())
    spec = json.loads(merge.get_openapi_json_schema())  # plain JSON types, as the file holds them
    for route in _routes(callback_handler.app):
        _describe_callback(spec, route.method.lower(), route.path.replace("<job_id>", "{jobId}"))
    _own_validation_errors(spec)
    _no_content(spec)
    _gateway_refusals(spec)
    return spec


def _routes(app: Any) -> list[Any]:
    """The resolver's registered routes. The callback resolver's own schema cannot be generated (it runs
    without validation, and its postponed `-> Response` annotation does not resolve), so its route is read
    from the resolver and described here."""
    return [route for route in app._static_routes + app._dynamic_routes if route.include_in_schema]


def _describe_callback(spec: dict[str, Any], method: str, path: str) -> None:
    operation: dict[str, Any] = {}
    operation.update(
        summary="The swap API's notifyHook for one job",
        tags=["callbacks"],
        operationId="receive_callback",
        security=[{"callbackToken": []}],
        parameters=[
            {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}},
            {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}},
        ],
        requestBody={
            "required": True,
            "description": "A task snapshot as the swap API sends it (see shared/seed/UPSTREAM_API.md).",
            "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
        },
        responses={
            str(status): {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
            }
            for status, schema, description in (
                (200, "CallbackApplied", "Applied (or a duplicate, which changes nothing)"),
                (400, "CallbackMessage", "A body that does not parse or is not a task snapshot"),
                (403, "CallbackMessage", "Invalid or missing token"),
                (409, "CallbackMessage", "Refused by the job's state (another task, a finished job)"),
                (413, "CallbackMessage", "Body too large"),
            )
        },
    )
    spec["paths"].setdefault(path, {})[method] = operation
    spec["components"]["schemas"]["CallbackMessage"] = CALLBACK_MESSAGE
    spec["components"]["schemas"]["CallbackApplied"] = CALLBACK_APPLIED


def _own_validation_errors(spec: dict[str, Any]) -> None:
    """Powertools documents a 422 HTTPValidationError; this API answers validation errors 400 in its own shape."""
    for path in spec["paths"].values():
        for operation in path.values():
            responses = operation.get("responses", {})
            default = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if default.get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
                if operation.get("parameters") or operation.get("requestBody"):
                    responses.setdefault(
                        "400",
                        {
                            "description": "Invalid request (details: a list of {loc, msg})",
                            "content": {"application/json": {"schema": ERROR_REF}},
                        },
                    )
    schemas = spec["components"]["schemas"]
    text = yaml.safe_dump(spec["paths"])
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f"/{unused}'" not in text and f"/{unused}\n" not in text:
            schemas.pop(unused, None)


def _gateway_refusals(spec: dict[str, Any]) -> None:
    """A signed route's caller can be refused by the gateway itself, in API Gateway's shape, not the API's."""
    for path in spec["paths"].values():
        for operation in path.values():
            schemes = {name for requirement in operation.get("security", []) for name in requirement}
            for scheme in sorted(schemes & set(GATEWAY_REFUSALS)):
                status, description = GATEWAY_REFUSALS[scheme]
                gateway = {"$ref": "#/components/schemas/GatewayMessage"}
                own = operation["responses"].get(status)
                if own is not None:  # the function refuses with this status too, in the API's own shape
                    description = f"{description}; or: {own['description']}"
                    gateway = {"anyOf": [gateway, own["content"]["application/json"]["schema"]]}
                operation["responses"][status] = {
                    "description": description,
                    "content": {"application/json": {"schema": gateway}},
                }
    spec["components"]["schemas"]["GatewayMessage"] = GATEWAY_MESSAGE


def _no_content(spec: dict[str, Any]) -> None:
    """Powertools gives a `Response[None]` route's 204 a JSON body of null; a 204 has no body at all."""
    for path in spec["paths"].values():
        for operation in path.values():
            operation.get("responses", {}).get("204", {}).pop("content", None)


def render() -> str:
    header = "# Generated by scripts/generate_openapi.py from the resolvers (make openapi). Do not edit.\n"
    return header + yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if api/openapi.yaml is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run make openapi", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
