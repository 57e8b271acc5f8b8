"""Environment variables: the names the code reads, set from the right parameters and resources."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from cfn_template import ROOT, parameter_defaults, resolve

COMMON = {
    "POWERTOOLS_SERVICE_NAME": {"Ref": "AWS::StackName"},  # the metrics' service dimension, per stack
    "POWERTOOLS_METRICS_NAMESPACE": "Swapdrop",
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
    "BUCKET_NAME": {"Ref": "MediaBucket"},
    "JOBS_TABLE_NAME": {"Ref": "JobsTable"},
    "OPEN_JOBS_INDEX_NAME": "OpenJobsByShard",
    "EVENT_BUS_NAME": {"Ref": "JobEventBus"},
    "UPSTREAM_BASE_URL": {"Ref": "UpstreamBaseUrl"},
    "UPSTREAM_AUTH_STYLE": {"Ref": "UpstreamAuthStyle"},
    "UPSTREAM_API_KEY_SECRET_ID": {
        "Fn::If": ["CreateApiKeySecret", {"Ref": "ApiKeySecret"}, {"Ref": "ExistingApiKeySecretArn"}]
    },
    "UPSTREAM_INSTANCE_ID": {"Ref": "UpstreamInstanceId"},
    "UPSTREAM_TIMEOUT_SECONDS": {"Ref": "UpstreamTimeoutSeconds"},
    "CALLBACK_TOKEN_SECRET_ID": {"Ref": "CallbackTokenSecret"},
    "MAX_IMAGE_BYTES": {"Ref": "MaxImageBytes"},
    "MAX_SUBMIT_ATTEMPTS": {"Ref": "MaxSubmitAttempts"},
    "JOB_TIMEOUT_MINUTES": {"Ref": "JobTimeoutMinutes"},
    "RECONCILE_QUIET_SECONDS": {"Ref": "ReconcileQuietSeconds"},
    "ALLOW_PRIVATE_RESULT_URLS": "false",
}
CALLBACK_BASE_URL = {"Fn::Sub": "https://${CallbackApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/callbacks"}
# Who builds callback URLs. CallbackFunction cannot: its API's routes refer to it.
NEEDS_CALLBACK_BASE_URL = {"SubmitFunction"}
FUNCTIONS = ("SubmitFunction", "CallbackFunction", "ReconcileFunction", "ApiFunction")


def env(lambda_functions: dict[str, Any], name: str) -> dict[str, Any]:
    return lambda_functions[name].get("Environment", {}).get("Variables", {})


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_gets_the_shared_variables(lambda_functions: dict[str, Any], name: str) -> None:
    variables = env(lambda_functions, name)
    missing = sorted(set(COMMON) - set(variables))
    assert not missing, f"{name} lacks environment variables {missing}"
    wrong = {k: variables[k] for k, v in COMMON.items() if variables[k] != v}
    assert not wrong, f"{name}: unexpected values {wrong}; expected { ({k: COMMON[k] for k in wrong}) }"


@pytest.mark.parametrize("name", sorted(NEEDS_CALLBACK_BASE_URL))
def test_callback_base_url_matches_the_callback_route(lambda_functions: dict[str, Any], name: str) -> None:
    assert env(lambda_functions, name).get("CALLBACK_BASE_URL") == CALLBACK_BASE_URL, (
        f"{name}: CALLBACK_BASE_URL must be {CALLBACK_BASE_URL}"
    )
    route = lambda_functions["CallbackFunction"]["Events"]
    (event,) = route.values()
    base_path = CALLBACK_BASE_URL["Fn::Sub"].split("${AWS::URLSuffix}", 1)[1]
    assert event["Properties"]["Path"] == f"{base_path}/{{jobId}}", (
        "callback URLs are {CALLBACK_BASE_URL}/{jobId}: the route must be that path"
    )


@pytest.mark.parametrize("name", ["CallbackFunction", "ApiFunction"])
def test_api_functions_do_not_refer_to_their_own_api(lambda_functions: dict[str, Any], name: str) -> None:
    value = env(lambda_functions, name).get("CALLBACK_BASE_URL", "")
    assert "CallbackApi" not in repr(value), f"{name} -> CallbackApi -> {name} is circular"


def test_api_function_environment(lambda_functions: dict[str, Any]) -> None:
    """What the jobs API reads besides the shared variables (swapdrop.config.Settings)."""
    variables = env(lambda_functions, "ApiFunction")
    expected = {
        "SUBMIT_QUEUE_URL": {"Ref": "SubmitQueue"},
        "IDEMPOTENCY_TABLE_NAME": {"Ref": "IdempotencyTable"},
        "UPLOAD_URL_SECONDS": {"Ref": "UploadUrlSeconds"},
        "RESULT_URL_SECONDS": {"Ref": "ResultUrlSeconds"},
        "UPLOAD_GRACE_SECONDS": "300",
    }
    wrong = {k: variables.get(k) for k, v in expected.items() if variables.get(k) != v}
    assert not wrong, f"ApiFunction: {wrong}, want { ({k: expected[k] for k in wrong}) }"


def test_reconciler_knows_the_upload_grace(lambda_functions: dict[str, Any]) -> None:
    """The reconciler ends API jobs whose upload never came: it must use the API's grace."""
    api = env(lambda_functions, "ApiFunction")["UPLOAD_GRACE_SECONDS"]
    assert env(lambda_functions, "ReconcileFunction").get("UPLOAD_GRACE_SECONDS") == api


def test_swapdrop_version_is_the_projects(lambda_functions: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert env(lambda_functions, "ApiFunction")["SWAPDROP_VERSION"] == version, (
        "GET /health reports SWAPDROP_VERSION: keep it pyproject's"
    )


@pytest.mark.parametrize("name", FUNCTIONS)
def test_no_event_logging_and_no_response_capture(lambda_functions: dict[str, Any], name: str) -> None:
    """Callback events carry the token in the query string; responses may carry image data."""
    variables = env(lambda_functions, name)
    assert str(variables.get("POWERTOOLS_LOGGER_LOG_EVENT", "false")).lower() == "false"
    assert str(variables.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE", "false")).lower() == "false"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_no_secret_values_in_the_environment(lambda_functions: dict[str, Any], name: str) -> None:
    for key in env(lambda_functions, name):
        if any(word in key for word in ("KEY", "SECRET", "TOKEN", "PASSWORD")):
            assert key.endswith("_SECRET_ID"), f"{name}: {key} looks like a secret value; pass a secret id"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_values_are_strings_or_intrinsics(lambda_functions: dict[str, Any], name: str) -> None:
    for key, value in env(lambda_functions, name).items():
        assert isinstance(value, str | dict), f"{name}: {key}={value!r} should be a quoted string"


def test_open_jobs_index_name_is_the_tables_index(lambda_functions: dict[str, Any], resources: dict) -> None:
    indexes = {i["IndexName"] for i in resources["JobsTable"]["Properties"]["GlobalSecondaryIndexes"]}
    for name in FUNCTIONS:
        assert env(lambda_functions, name)["OPEN_JOBS_INDEX_NAME"] in indexes


# --------------------------------------------------------------------------- against the code


def _settings_class() -> Any:
    from swapdrop.config import Settings  # the other half of the contract: what the code reads

    return Settings


def test_template_sets_only_variables_the_code_reads(lambda_functions: dict[str, Any]) -> None:
    known = {field.upper() for field in _settings_class().model_fields} | {"CALLBACK_BASE_URL"}
    for name in FUNCTIONS:
        unknown = sorted(k for k in env(lambda_functions, name) if not k.startswith("POWERTOOLS_") and k not in known)
        assert not unknown, f"{name} sets {unknown}, which swapdrop.config.Settings does not read (misspelt?)"


def test_template_sets_every_variable_the_code_requires(lambda_functions: dict[str, Any]) -> None:
    required = {name.upper() for name, field in _settings_class().model_fields.items() if field.is_required()}
    for name in FUNCTIONS:
        missing = sorted(required - set(env(lambda_functions, name)))
        assert not missing, f"{name} lacks {missing}, which swapdrop.config.Settings requires"


def _numeric_extremes(parameters: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Parameter sets to try: the defaults, then each Number parameter at its MinValue and MaxValue."""
    cases = [("defaults", {})]
    for pname, spec in parameters.items():
        for bound in ("MinValue", "MaxValue"):
            if bound in spec:
                cases.append((f"{pname}={spec[bound]}", {pname: spec[bound]}))
        for allowed in spec.get("AllowedValues", []) if spec["Type"] == "String" else []:
            cases.append((f"{pname}={allowed}", {pname: allowed}))
    cases.append(
        (
            "existing secret",
            {"ExistingApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf"},
        )
    )
    cases.append(("instance id", {"UpstreamInstanceId": "1286541563528380416"}))
    return cases


def test_code_accepts_the_environment_for_every_allowed_parameter_value(
    template: dict[str, Any], lambda_functions: dict[str, Any], parameters: dict[str, Any]
) -> None:
    """Every value the template lets a user deploy must pass the code's own Settings validation."""
    settings_class = _settings_class()
    failures = []
    for label, overrides in _numeric_extremes(parameters):
        params = {**parameter_defaults(template), **overrides}
        for name in FUNCTIONS:
            variables = {k: str(v) for k, v in resolve(template, env(lambda_functions, name), params).items()}
            try:
                settings = settings_class.from_environ(variables)
                if name in NEEDS_CALLBACK_BASE_URL:
                    assert settings.callback_base.endswith("/callbacks")
            except Exception as error:
                failures.append(f"{name} with {label}: {type(error).__name__}: {error}")
    assert not failures, "\n".join(failures)
