"""api/openapi.yaml is what the resolvers generate (make openapi), a valid OpenAPI 3.1 document, and
covers every route of both resolvers with the API's error schema."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import api_handler
import callback_handler
import yaml
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "api" / "openapi.yaml"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_openapi", ROOT / "scripts" / "generate_openapi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_spec_is_what_the_resolvers_generate() -> None:
    assert SPEC.read_text() == _generator().render(), "api/openapi.yaml is out of date: run make openapi"


def test_the_spec_is_valid_openapi_3_1() -> None:
    document = yaml.safe_load(SPEC.read_text())
    assert document["openapi"].startswith("3.1")
    validate(document)


def _resolver_routes() -> set[tuple[str, str]]:
    routes = set()
    for app in (api_handler.app, callback_handler.app):
        for route in app._static_routes + app._dynamic_routes:
            path = route.path.replace("<job_id>", "{jobId}").replace("<", "{").replace(">", "}")
            routes.add((route.method.upper(), path))
    return routes


def test_the_spec_has_exactly_the_resolvers_routes() -> None:
    document = yaml.safe_load(SPEC.read_text())
    in_spec = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert in_spec == _resolver_routes()


def test_every_error_response_uses_the_error_schema_and_signed_routes_name_their_schemes() -> None:
    document = yaml.safe_load(SPEC.read_text())
    assert set(document["components"]["securitySchemes"]) == {"sigv4", "jwt", "callbackToken"}
    for path, ops in document["paths"].items():
        for method, operation in ops.items():
            for status, response in operation["responses"].items():
                if path.startswith("/callbacks") or not status.startswith(("4", "5")):
                    continue
                schema = response["content"]["application/json"]["schema"]
                ref = {"$ref": "#/components/schemas/ErrorResponse"}
                gateway = {"$ref": "#/components/schemas/GatewayMessage"}
                if status in ("401", "403"):
                    # the gateway's own refusals, in API Gateway's shape; where the function refuses
                    # with the same status too (a JWT caller changing faces: 403), either shape
                    assert schema in (gateway, {"anyOf": [gateway, ref]}), (method, path, status)
                else:
                    assert schema == ref, (method, path, status)
            if path != "/health" and not path.startswith("/callbacks"):
                assert operation["security"] == [{"sigv4": []}, {"jwt": []}], (method, path)
    assert "security" not in document["paths"]["/health"]["get"]
