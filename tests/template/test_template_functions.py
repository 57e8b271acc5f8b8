"""The functions and the layer: runtime, architecture, handlers, timeouts, event sources."""

from __future__ import annotations

import ast
import re
from typing import Any

import pytest
from cfn_template import ROOT, as_list

EXPECTED_FUNCTIONS = {
    "SubmitFunction": ("functions/submit/", "submit_handler.lambda_handler"),
    "CallbackFunction": ("functions/callback/", "callback_handler.lambda_handler"),
    "ReconcileFunction": ("functions/reconcile/", "reconcile_handler.lambda_handler"),
    "ApiFunction": ("functions/api/", "api_handler.lambda_handler"),
    "WebhookFunction": ("functions/webhook/", "webhook_handler.lambda_handler"),
    "RequestFunction": ("functions/request/", "request_handler.lambda_handler"),
}
LAMBDA_MAX_TIMEOUT = 900


def test_exactly_the_expected_functions(lambda_functions: dict[str, Any]) -> None:
    assert set(lambda_functions) == set(EXPECTED_FUNCTIONS), (
        f"template functions {sorted(lambda_functions)} differ from {sorted(EXPECTED_FUNCTIONS)}"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED_FUNCTIONS))
def test_runtime_architecture_tracing(lambda_functions: dict[str, Any], name: str) -> None:
    props = lambda_functions[name]
    assert props.get("Runtime") == "python3.13", f"{name}: Runtime is {props.get('Runtime')!r}, want python3.13"
    assert props.get("Architectures") == ["arm64"], f"{name}: Architectures {props.get('Architectures')!r}"
    tracing = {"Fn::If": ["TracingOn", "Active", "PassThrough"]}  # EnableTracing: test_template_tracing.py
    assert props.get("Tracing") == tracing, f"{name}: Tracing {props.get('Tracing')!r}, want {tracing}"
    assert {"Ref": "CommonLayer"} in as_list(props.get("Layers", [])), f"{name} does not use CommonLayer"


@pytest.mark.parametrize("name", sorted(EXPECTED_FUNCTIONS))
def test_code_location_and_handler(lambda_functions: dict[str, Any], name: str) -> None:
    code_uri, handler = EXPECTED_FUNCTIONS[name]
    props = lambda_functions[name]
    assert props.get("CodeUri") == code_uri, f"{name}: CodeUri {props.get('CodeUri')!r}, want {code_uri!r}"
    assert props.get("Handler") == handler, f"{name}: Handler {props.get('Handler')!r}, want {handler!r}"
    module_name, function_name = handler.rsplit(".", 1)
    module = ROOT / code_uri / f"{module_name.replace('.', '/')}.py"
    assert module.is_file(), f"{name}: handler module {module.relative_to(ROOT)} does not exist"
    tree = ast.parse(module.read_text(encoding="utf-8"))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)} | {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert function_name in defined, f"{name}: {module.relative_to(ROOT)} defines no top-level {function_name}"


@pytest.mark.parametrize("name", sorted(EXPECTED_FUNCTIONS))
def test_timeout_and_memory_within_lambda_limits(lambda_functions: dict[str, Any], name: str) -> None:
    props = lambda_functions[name]
    timeout, memory = props.get("Timeout"), props.get("MemorySize")
    assert isinstance(timeout, int) and 1 <= timeout <= LAMBDA_MAX_TIMEOUT, f"{name}: Timeout {timeout!r}"
    assert isinstance(memory, int) and 128 <= memory <= 10240, f"{name}: MemorySize {memory!r}"


def test_function_sizes(lambda_functions: dict[str, Any]) -> None:
    assert lambda_functions["SubmitFunction"]["MemorySize"] >= 512, (
        "SubmitFunction holds two 10 MiB images base64-encoded: give it at least 512 MB"
    )
    assert lambda_functions["SubmitFunction"]["Timeout"] == 180
    assert lambda_functions["CallbackFunction"]["Timeout"] == 30
    assert lambda_functions["ReconcileFunction"]["Timeout"] == 300
    # API Gateway's integration gives up at 29 s; GET /jobs/{jobId}?wait holds up to 25 s.
    assert lambda_functions["ApiFunction"]["Timeout"] == 30


def test_submit_timeout_leaves_room_for_a_default_batch(
    lambda_functions: dict[str, Any], parameters: dict[str, Any]
) -> None:
    timeout = lambda_functions["SubmitFunction"]["Timeout"]
    per_request = parameters["UpstreamTimeoutSeconds"]
    batch = parameters["SubmitBatchSize"]["Default"]
    assert per_request["MaxValue"] < timeout, "one upstream request may outlast SubmitFunction's timeout"
    assert batch * per_request["Default"] <= timeout, (
        f"a default batch of {batch} at {per_request['Default']} s per upstream request exceeds "
        f"SubmitFunction's {timeout} s timeout"
    )


def test_common_layer(resources: dict[str, Any]) -> None:
    layer = resources["CommonLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    props = layer["Properties"]
    assert props["ContentUri"] == "layers/common/"
    assert "python3.13" in props.get("CompatibleRuntimes", []), "CommonLayer is not marked for python3.13"
    assert props.get("CompatibleArchitectures") == ["arm64"]
    assert layer.get("Metadata") == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}, (
        "the layer is built by layers/common/Makefile (arm64 wheels, trimmed, with .pyc)"
    )
    makefile = (ROOT / "layers" / "common" / "Makefile").read_text(encoding="utf-8")
    assert "build-CommonLayer:" in makefile and "--platform manylinux2014_aarch64" in makefile, (
        "the Makefile must build the CommonLayer target from aarch64 wheels (else Lambda on arm64 cannot load them)"
    )
    assert "compileall" in makefile and "unchecked-hash" in makefile, "the layer must ship .pyc (/opt is read-only)"


def test_layer_requirements_ask_for_tracer_and_parser_extras() -> None:
    requirements = (ROOT / "layers/common/requirements.txt").read_text(encoding="utf-8")
    match = re.search(r"^aws-lambda-powertools\[([^\]]*)\]", requirements, re.MULTILINE)
    assert match, "layers/common/requirements.txt must install aws-lambda-powertools with extras"
    extras = {extra.strip() for extra in match.group(1).split(",")}
    assert {"tracer", "parser"} <= extras, (
        f"powertools extras {sorted(extras)}: Tracer() needs [tracer] (aws-xray-sdk), models need [parser]"
    )


# --------------------------------------------------------------------------- event sources


def only_event(props: dict[str, Any], name: str) -> dict[str, Any]:
    events = props.get("Events", {})
    assert len(events) == 1, f"{name} should have exactly one event source, has {sorted(events)}"
    return next(iter(events.values()))


def test_submit_function_reads_the_queue_with_partial_failures(lambda_functions: dict[str, Any]) -> None:
    event = only_event(lambda_functions["SubmitFunction"], "SubmitFunction")
    assert event["Type"] == "SQS"
    props = event["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": ["SubmitQueue", "Arn"]}, f"Queue is {props['Queue']!r}"
    assert props.get("BatchSize") == {"Ref": "SubmitBatchSize"}, f"BatchSize is {props.get('BatchSize')!r}"
    assert "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []), (
        "without ReportBatchItemFailures one failed upload re-drives the whole batch"
    )
    concurrency = props.get("ScalingConfig", {}).get("MaximumConcurrency")
    assert concurrency == {"Ref": "UpstreamConcurrency"}, (
        f"ScalingConfig.MaximumConcurrency is {concurrency!r}, want !Ref UpstreamConcurrency"
    )
    assert props.get("Enabled", True) is not False


def test_sqs_batch_and_concurrency_parameters_fit_aws_ranges(parameters: dict[str, Any]) -> None:
    batch, concurrency = parameters["SubmitBatchSize"], parameters["UpstreamConcurrency"]
    assert 1 <= batch["MinValue"] <= batch["Default"] <= batch["MaxValue"] <= 10, (
        "an SQS event source without a batching window takes batches of 1-10"
    )
    assert 2 <= concurrency["MinValue"] <= concurrency["Default"] <= concurrency["MaxValue"] <= 1000, (
        "SQS ScalingConfig.MaximumConcurrency must be 2-1000"
    )


def test_callback_function_is_the_http_api_route(lambda_functions: dict[str, Any], resources: dict) -> None:
    event = only_event(lambda_functions["CallbackFunction"], "CallbackFunction")
    assert event["Type"] == "HttpApi"
    props = event["Properties"]
    assert props.get("ApiId") == {"Ref": "CallbackApi"}
    assert str(props.get("Method")).upper() == "POST"
    assert props.get("Path") == "/callbacks/{jobId}"
    assert props.get("PayloadFormatVersion", "2.0") == "2.0"
    assert props.get("Auth") == {"Authorizer": "NONE"}, "the swap API cannot sign: the callback route must stay open"
    assert resources["CallbackApi"]["Type"] == "AWS::Serverless::HttpApi"


def test_callback_api_is_throttled_and_logs_no_query_string(resources: dict[str, Any]) -> None:
    props = resources["CallbackApi"]["Properties"]
    assert props.get("StageName", "$default") == "$default", "CALLBACK_BASE_URL assumes the $default stage"
    throttling = props.get("DefaultRouteSettings", {})
    assert throttling.get("ThrottlingBurstLimit") and throttling.get("ThrottlingRateLimit"), (
        "the callback API is public: throttle it"
    )
    log_format = props.get("AccessLogSettings", {}).get("Format", "")
    for leak in ("querystring", "$input", "$request", "token"):
        assert leak not in log_format.lower(), f"access log format contains {leak!r}: it could log the token"


def test_reconcile_function_runs_on_the_schedule(lambda_functions: dict[str, Any]) -> None:
    event = only_event(lambda_functions["ReconcileFunction"], "ReconcileFunction")
    assert event["Type"] in ("Schedule", "ScheduleV2")
    props = event["Properties"]
    expression = props.get("Schedule", props.get("ScheduleExpression"))
    assert expression == {"Ref": "ReconcileSchedule"}, f"schedule is {expression!r}"
    assert props.get("Enabled", True) is not False and props.get("State", "ENABLED") == "ENABLED"
