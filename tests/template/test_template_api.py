"""The HTTP APIs: every route on the right function with the right auth, the optional JWT API,
the client policy, throttling and access logs."""

from __future__ import annotations

import re
from typing import Any

import pytest
from cfn_template import as_list, evaluate_condition, parameter_defaults, walk

# The jobs API (issue 7): (method, path) -> open without IAM?
JOBS_ROUTES = {
    ("PUT", "/faces/{face}"),
    ("DELETE", "/faces/{face}"),
    ("GET", "/faces"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{jobId}"),
    ("POST", "/jobs/{jobId}/cancel"),
    ("POST", "/jobs/{jobId}/retry"),
}
OPEN_ROUTES = {("POST", "/callbacks/{jobId}"): "CallbackFunction", ("GET", "/health"): "ApiFunction"}
MAX_WAIT_SECONDS = 25  # GET /jobs/{jobId}?wait=N, N <= 25
JWT_RESOURCE_TYPES = {
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Authorizer",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Stage",
    "AWS::Lambda::Permission",
}
# Anything in an access log format that could hold a callback token, a query string or a body.
LOG_LEAKS = ("querystring", "$input", "$request", "$context.path", "body", "token", "header")


def http_routes(lambda_functions: dict[str, Any]) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """(METHOD, path) -> (function, event properties) of every HttpApi event."""
    routes: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for name, props in lambda_functions.items():
        for event in props.get("Events", {}).values():
            if event["Type"] == "HttpApi":
                key = (str(event["Properties"]["Method"]).upper(), event["Properties"]["Path"])
                assert key not in routes, f"{key} is declared twice"
                routes[key] = (name, event["Properties"])
    return routes


def jwt_resources(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in resources.items() if n.startswith("Jwt")}


# --------------------------------------------------------------------------- the IAM API


def test_every_route_is_on_the_right_function(lambda_functions: dict[str, Any]) -> None:
    routes = http_routes(lambda_functions)
    assert set(routes) == JOBS_ROUTES | set(OPEN_ROUTES), f"routes {sorted(routes)}"
    for key, (function, props) in routes.items():
        assert function == OPEN_ROUTES.get(key, "ApiFunction"), f"{key} is served by {function}"
        assert props.get("ApiId") == {"Ref": "CallbackApi"}, f"{key} is not on the stack's HTTP API"
        assert props.get("PayloadFormatVersion") == "2.0", f"{key}: payload format {props.get('PayloadFormatVersion')}"


def test_iam_is_the_default_and_only_callbacks_and_health_are_open(
    resources: dict[str, Any], lambda_functions: dict[str, Any]
) -> None:
    assert resources["CallbackApi"]["Properties"]["Auth"] == {
        "EnableIamAuthorizer": True,
        "DefaultAuthorizer": "AWS_IAM",
    }
    for key, (_, props) in http_routes(lambda_functions).items():
        if key in OPEN_ROUTES:
            assert props.get("Auth") == {"Authorizer": "NONE"}, f"{key} must be open (Authorizer NONE)"
        else:
            assert "Auth" not in props, f"{key} overrides the default AWS_IAM authorizer: {props['Auth']}"


def test_route_timeouts_cover_the_longest_wait(lambda_functions: dict[str, Any]) -> None:
    function_timeout = lambda_functions["ApiFunction"]["Timeout"]
    for key, (function, props) in http_routes(lambda_functions).items():
        timeout = props.get("TimeoutInMillis", 30000) / 1000
        assert timeout <= 29 or function != "ApiFunction", f"{key}: API Gateway caps an integration at 29 s"
        if function == "ApiFunction":
            assert MAX_WAIT_SECONDS + 2 <= timeout <= function_timeout, (
                f"{key}: integration timeout {timeout} s must leave room for ?wait={MAX_WAIT_SECONDS} "
                f"and not outlast the function ({function_timeout} s)"
            )


def test_reserved_concurrency_is_a_parameter(lambda_functions: dict[str, Any], parameters: dict[str, Any]) -> None:
    assert lambda_functions["ApiFunction"]["ReservedConcurrentExecutions"] == {"Ref": "ApiConcurrency"}
    assert parameters["ApiConcurrency"]["MinValue"] >= 1


def access_log_formats(resources: dict[str, Any]) -> dict[str, str]:
    return {
        "CallbackApi": resources["CallbackApi"]["Properties"]["AccessLogSettings"]["Format"],
        "JwtApiStage": resources["JwtApiStage"]["Properties"]["AccessLogSettings"]["Format"],
    }


@pytest.mark.parametrize("api", ["CallbackApi", "JwtApiStage"])
def test_access_logs_hold_no_query_string_or_body(resources: dict[str, Any], api: str) -> None:
    log_format = access_log_formats(resources)[api]
    for leak in LOG_LEAKS:
        assert leak not in log_format.lower(), f"{api}'s access log format contains {leak!r}"
    variables = re.findall(r"\$context\.[A-Za-z.]+", log_format)
    assert "$context.routeKey" in variables, "log the route key (the template of the path), not the path"
    assert all(not v.startswith("$context.path") for v in variables)


def test_leak_check_would_catch_a_query_string() -> None:
    """The check above is not vacuous: the usual formats that log requests do trip it."""
    for bad in ('"path":"$context.path"', '"q":"$request.querystring.token"', '"b":"$input.body"'):
        assert any(leak in bad.lower() for leak in LOG_LEAKS), bad


@pytest.mark.parametrize("where", [("CallbackApi", "DefaultRouteSettings"), ("JwtApiStage", "DefaultRouteSettings")])
def test_throttling_comes_from_the_parameters(resources: dict[str, Any], parameters: dict, where: tuple) -> None:
    name, key = where
    settings = resources[name]["Properties"][key]
    assert settings == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurst"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottleRate"},
    }, f"{name}.{key}: {settings}"
    assert parameters["ApiThrottleRate"]["Type"] == parameters["ApiThrottleBurst"]["Type"] == "Number"


def test_access_log_groups_keep_logs_for_the_retention(resources: dict[str, Any]) -> None:
    for name in ("CallbackApi", "JwtApiStage"):
        destination = resources[name]["Properties"]["AccessLogSettings"]["DestinationArn"]
        group = resources[destination["Fn::GetAtt"][0]]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


# --------------------------------------------------------------------------- the client policy


def _policy_resource(method: str, path: str) -> dict[str, str]:
    arn_path = re.sub(r"\{[^}]+\}", "*", path).lstrip("/")
    return {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${CallbackApi}"
        f"/$default/{method}/{arn_path}"
    }


def test_client_policy_allows_exactly_the_iam_routes(template: dict[str, Any], resources: dict[str, Any]) -> None:
    policy = resources["ApiClientPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and as_list(statement["Action"]) == ["execute-api:Invoke"]
    want = sorted((_policy_resource(m, p) for m, p in JOBS_ROUTES), key=str)
    assert sorted(as_list(statement["Resource"]), key=str) == want
    assert template["Outputs"]["ClientPolicyArn"]["Value"] == {"Ref": "ApiClientPolicy"}


# --------------------------------------------------------------------------- the JWT API


def test_jwt_condition_needs_issuer_and_audience(template: dict[str, Any]) -> None:
    defaults = parameter_defaults(template)
    has_jwt = template["Conditions"]["HasJwt"]
    issuer, audience = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC", "client-id"
    assert not evaluate_condition(template, has_jwt, defaults)
    assert evaluate_condition(template, has_jwt, {**defaults, "JwtIssuer": issuer, "JwtAudience": audience})
    assert not evaluate_condition(template, has_jwt, {**defaults, "JwtIssuer": issuer})
    assert not evaluate_condition(template, has_jwt, {**defaults, "JwtAudience": audience})
    # One without the other is refused at deploy time (a Rule), not silently ignored.
    rules = template["Rules"]
    assert {r["RuleCondition"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for r in rules.values()} == {
        "JwtIssuer",
        "JwtAudience",
    }
    pattern = template["Parameters"]["JwtIssuer"]["AllowedPattern"]
    assert re.fullmatch(pattern, issuer) and re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "http://issuer.example"), "JWT issuers must be https"


def test_jwt_resources_exist_only_under_has_jwt(template: dict[str, Any], resources: dict[str, Any]) -> None:
    jwt = jwt_resources(resources)
    assert {r["Type"] for r in jwt.values()} >= JWT_RESOURCE_TYPES
    for name, resource in jwt.items():
        assert resource.get("Condition") == "HasJwt", f"{name} must have Condition HasJwt"
    # Whatever refers to a JWT resource is itself conditional (else it fails without JWT).
    for name, resource in resources.items():
        if name in jwt:
            continue
        for _, value in walk(resource):
            if isinstance(value, dict) and (
                value.get("Ref") in jwt or str(value.get("Fn::Sub", "")).find("${Jwt") >= 0
            ):
                pytest.fail(f"{name} refers to a JWT resource without Condition HasJwt")
    assert template["Outputs"]["JwtApiUrl"]["Condition"] == "HasJwt"


def test_jwt_routes_mirror_the_jobs_routes(resources: dict[str, Any]) -> None:
    routes = {
        n: r["Properties"] for n, r in jwt_resources(resources).items() if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    keys = {tuple(props["RouteKey"].split(" ", 1)) for props in routes.values()}
    assert keys == JOBS_ROUTES, f"JWT routes {sorted(keys)}: the jobs routes, never callbacks or health"
    for name, props in routes.items():
        assert props["ApiId"] == {"Ref": "JwtApi"}
        assert props["AuthorizationType"] == "JWT", f"{name} is not behind the JWT authorizer"
        assert props["AuthorizerId"] == {"Ref": "JwtApiAuthorizer"}
        assert props["Target"] == {"Fn::Sub": "integrations/${JwtApiIntegration}"}


def test_jwt_authorizer_integration_stage_and_permission(resources: dict[str, Any]) -> None:
    authorizer = resources["JwtApiAuthorizer"]["Properties"]
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["IdentitySource"] == ["$request.header.Authorization"]
    assert authorizer["JwtConfiguration"] == {"Issuer": {"Ref": "JwtIssuer"}, "Audience": [{"Ref": "JwtAudience"}]}
    integration = resources["JwtApiIntegration"]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["IntegrationUri"] == {"Fn::GetAtt": ["ApiFunction", "Arn"]}
    assert integration["PayloadFormatVersion"] == "2.0"
    assert MAX_WAIT_SECONDS + 2 <= integration["TimeoutInMillis"] / 1000 <= 29
    stage = resources["JwtApiStage"]["Properties"]
    assert stage["StageName"] == "$default" and stage["AutoDeploy"] is True
    permission = resources["JwtApiInvokePermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "ApiFunction"}
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert "${JwtApi}/" in permission["SourceArn"]["Fn::Sub"], "only the JWT API may invoke through this permission"
