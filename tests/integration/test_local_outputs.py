"""The local stack registers itself in moto's CloudFormation: describe_stacks answers every template
Output (whose Condition holds locally) with a working local value, so the CLI finds a local stack
exactly as it finds a deployed one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from swapdrop_local.cloudformation import LOCAL_CONDITIONS, stack_outputs
from swapdrop_local.provision import local_client
from swapdrop_local.stack import RunningStack, StackOptions
from swapdrop_local.template import Resolver

from integration.conftest import png

RESULT = png((30, 160, 90), size=(32, 24))
PLACEHOLDERS = ("execute-api", "amazonaws.com", "local-http-api", "local-jwt-api", "${", "{'", "None")


@pytest.fixture(scope="module")
def running() -> Iterator[RunningStack]:
    options = StackOptions(reconcile_interval=0, emulator={"step_delay": 0.01, "engine": lambda _s, _t: RESULT})
    with RunningStack(options) as stack:
        yield stack


@pytest.fixture(scope="module")
def outputs(running: RunningStack) -> dict[str, str]:
    info = running.info()
    cloudformation = local_client("cloudformation", info["region"], info["endpoint_url"])
    (stack,) = cloudformation.describe_stacks(StackName=info["stack_name"])["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def _expected_keys(running: RunningStack) -> set[str]:
    assert running.stack and running.stack.resolver
    resolver = running.stack.resolver
    return {
        key
        for key, spec in resolver.template["Outputs"].items()
        if "Condition" not in spec or LOCAL_CONDITIONS.get(spec["Condition"]) or resolver.condition(spec["Condition"])
    }


def test_every_template_output_has_a_local_value(running: RunningStack, outputs: dict[str, str]) -> None:
    assert set(outputs) == _expected_keys(running)
    for key, value in outputs.items():
        assert value, key
        assert not any(p in value for p in PLACEHOLDERS), f"{key} = {value!r} is not a local value"


def test_outputs_point_at_the_local_resources(running: RunningStack, outputs: dict[str, str]) -> None:
    info = running.info()
    assert outputs["ApiUrl"] == info["api_url"] + "/"
    assert outputs["CallbackApiUrl"] == info["api_url"] + "/"
    assert outputs["CallbackBaseUrl"] == info["callback_base_url"]
    assert outputs["JwtApiUrl"] == info["jwt_api_url"] + "/"
    assert outputs["BucketName"] == info["bucket"]
    assert outputs["JobsTableName"] == info["jobs_table"]
    assert outputs["SubmitQueueUrl"] == info["queue_url"]
    assert outputs["SubmitDeadLetterQueueUrl"] == info["dlq_url"]
    assert outputs["JobEventBusName"] == info["event_bus"]
    assert outputs["ApiKeySecretArn"] == info["api_key_secret_id"]
    if "UpstreamBaseUrl" in outputs:
        assert outputs["UpstreamBaseUrl"] == info["upstream_url"]


def test_every_named_resource_exists_on_moto(running: RunningStack, outputs: dict[str, str]) -> None:
    info = running.info()
    client = {s: local_client(s, info["region"], info["endpoint_url"]) for s in ("sqs", "logs", "secretsmanager")}
    for key, value in outputs.items():
        if key.endswith("QueueUrl"):
            client["sqs"].get_queue_attributes(QueueUrl=value, AttributeNames=["QueueArn"])
        elif key.endswith("SecretArn"):
            client["secretsmanager"].describe_secret(SecretId=value)
        elif key.endswith("LogGroupName"):
            groups = client["logs"].describe_log_groups(logGroupNamePrefix=value)["logGroups"]
            assert value in [g["logGroupName"] for g in groups], key
        elif key.endswith("FunctionName"):
            assert value in running.functions, key
    for function, group in running.stack.log_groups.items():  # type: ignore[union-attr]
        assert client["logs"].describe_log_groups(logGroupNamePrefix=group)["logGroups"], function


def test_info_names_the_stack_and_its_log(running: RunningStack, tmp_path) -> None:
    path = tmp_path / "local.json"
    running.write_info(path)
    info = json.loads(path.read_text())
    assert info["stack_name"] == running.stack.stack_name  # type: ignore[union-attr]
    assert info["stack_name"].startswith("swapdrop-local")
    assert info["log_file"] and running.log_file and running.log_file.exists()


def test_outputs_honour_conditions_and_resolve_api_urls() -> None:
    template = {
        "Conditions": {"Never": {"Fn::Equals": ["a", "b"]}, "HasJwt": {"Fn::Equals": ["a", "b"]}},
        "Resources": {"Api": {"Type": "AWS::Serverless::HttpApi"}, "Policy": {"Type": "AWS::IAM::ManagedPolicy"}},
        "Outputs": {
            "Hidden": {"Condition": "Never", "Value": "x"},
            "JwtOnly": {"Condition": "HasJwt", "Value": "jwt"},
            "Url": {"Value": {"Fn::Sub": "https://${CallbackApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/cb"}},
            "PolicyArn": {"Value": {"Ref": "Policy"}},
            "Prefix": {"Value": {"Fn::Sub": "${AWS::StackName}-"}},
        },
    }
    resolver = Resolver(template, region="eu-west-1", stack_name="s")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack_outputs(resolver, {"CallbackApi": "http://h:1"})}
    assert outputs == {
        "JwtOnly": "jwt",
        "Url": "http://h:1/cb",
        "PolicyArn": "arn:aws:iam::123456789012:policy/s-Policy",
        "Prefix": "s-",
    }
