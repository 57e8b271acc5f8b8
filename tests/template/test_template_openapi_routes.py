"""One set of routes in three places: template.yaml (what API Gateway serves), the resolvers (what the
functions answer) and api/openapi.yaml (what clients are told). A route in one and not the others is
a 404 from the gateway, a 404 from the function, or a client that cannot find it: all three must agree,
methods and auth included."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import api_handler
import callback_handler
import pytest
import yaml
from test_template_api import http_routes, jwt_resources

SPEC = Path(__file__).resolve().parents[2] / "api" / "openapi.yaml"
Routes = set[tuple[str, str]]


def _template_routes(lambda_functions: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> function of every HttpApi event of the IAM API."""
    return {key: function for key, (function, _) in http_routes(lambda_functions).items()}


def _resolver_path(path: str) -> str:
    """Powertools' `/jobs/<jobId>` is OpenAPI's and API Gateway's `/jobs/{jobId}`; the callback
    resolver names its parameter `job_id`, the template and the spec `jobId`."""
    return re.sub(r"<([^>]+)>", lambda m: "{jobId}" if m[1] == "job_id" else "{" + m[1] + "}", path)


def _resolver_routes() -> dict[tuple[str, str], str]:
    routes: dict[tuple[str, str], str] = {}
    for function, app in (("ApiFunction", api_handler.app), ("CallbackFunction", callback_handler.app)):
        for route in app._static_routes + app._dynamic_routes:
            key = (route.method.upper(), _resolver_path(route.path))
            assert key not in routes, f"{key} is registered twice"
            routes[key] = function
    return routes


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())


def _spec_routes(spec: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """(METHOD, path) -> the operation's security (None when it inherits the document's)."""
    return {
        (method.upper(), path): operation.get("security")
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }


def test_template_resolvers_and_spec_have_the_same_routes(lambda_functions: dict[str, Any], spec: dict) -> None:
    template, resolvers, documented = _template_routes(lambda_functions), _resolver_routes(), _spec_routes(spec)
    assert set(template) == set(resolvers), (
        f"only in template.yaml: {sorted(set(template) - set(resolvers))}; "
        f"only in the resolvers: {sorted(set(resolvers) - set(template))}"
    )
    assert set(resolvers) == set(documented), (
        f"only in the resolvers: {sorted(set(resolvers) - set(documented))}; "
        f"only in api/openapi.yaml: {sorted(set(documented) - set(resolvers))}"
    )


def test_each_route_is_served_by_the_function_whose_resolver_has_it(lambda_functions: dict[str, Any]) -> None:
    assert _template_routes(lambda_functions) == _resolver_routes()


def test_the_spec_names_the_auth_the_template_gives(lambda_functions: dict[str, Any], spec: dict) -> None:
    """Open in the template (Authorizer NONE) is no SigV4/JWT in the spec; the rest name both schemes."""
    documented = _spec_routes(spec)
    for key, (_, props) in http_routes(lambda_functions).items():
        schemes = {name for requirement in documented[key] or [] for name in requirement}
        if props.get("Auth") == {"Authorizer": "NONE"}:
            assert not schemes & {"sigv4", "jwt"}, f"{key} is open in template.yaml but the spec asks for {schemes}"
        else:
            assert schemes == {"sigv4", "jwt"}, f"{key} needs SigV4 (or a JWT on JwtApi); the spec says {schemes}"


def test_the_jwt_api_serves_exactly_the_signed_routes_of_the_spec(resources: dict[str, Any], spec: dict) -> None:
    jwt_routes = {
        tuple(r["Properties"]["RouteKey"].split(" ", 1))
        for r in jwt_resources(resources).values()
        if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    signed = {key for key, security in _spec_routes(spec).items() if {"jwt": []} in (security or [])}
    assert jwt_routes == signed


def test_a_route_missing_from_one_place_is_caught(lambda_functions: dict[str, Any], spec: dict) -> None:
    """The comparison is not vacuous: drop one route from the spec and the sets differ."""
    documented = _spec_routes(spec)
    documented.pop(("POST", "/jobs/{jobId}/retry"))
    assert set(_template_routes(lambda_functions)) != set(documented)
    assert ("POST", "/jobs/{jobId}/retry") in _resolver_routes()
