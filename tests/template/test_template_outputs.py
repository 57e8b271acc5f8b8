"""The stack outputs the `swapdrop` CLI reads (describe_stacks) and the local stack registers with
local values: the keys are a contract (coord/ISSUE9.md, "Stack outputs")."""

from __future__ import annotations

from typing import Any

import pytest

FUNCTIONS = ("Submit", "Callback", "Reconcile", "Api", "Request", "Webhook")
QUEUES = ("Submit", "SwapRequest", "Webhook")
ECHOED_PARAMETERS = ("UpstreamBaseUrl", "UpstreamAuthStyle", "ReconcileSchedule")


def test_every_queue_and_its_dead_letter_queue(template: dict[str, Any], resources: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for queue in QUEUES:
        assert outputs[f"{queue}QueueUrl"]["Value"] == {"Ref": f"{queue}Queue"}
        assert outputs[f"{queue}DeadLetterQueueUrl"]["Value"] == {"Ref": f"{queue}DeadLetterQueue"}
    # Every dead-letter queue URL has its source queue's (the CLI pairs them by prefix) ...
    for key in outputs:
        if key.endswith("DeadLetterQueueUrl"):
            assert key.removesuffix("DeadLetterQueueUrl") + "QueueUrl" in outputs, key
    # ... and every queue of the template has its output.
    queue_outputs = {o["Value"].get("Ref") for k, o in outputs.items() if k.endswith("QueueUrl")}
    assert queue_outputs == {n for n, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_and_the_log_group_it_writes_to(
    template: dict[str, Any], lambda_functions: dict[str, Any], name: str
) -> None:
    outputs = template["Outputs"]
    assert outputs[f"{name}FunctionName"]["Value"] == {"Ref": f"{name}Function"}
    group = outputs[f"{name}FunctionLogGroupName"]["Value"]
    assert group == lambda_functions[f"{name}Function"]["LoggingConfig"]["LogGroup"], name
    assert template["Resources"][group["Ref"]]["Type"] == "AWS::Logs::LogGroup"


def test_the_outputs_cover_every_function(template: dict[str, Any], lambda_functions: dict[str, Any]) -> None:
    named = {k.removesuffix("FunctionName") for k in template["Outputs"] if k.endswith("FunctionName")}
    assert {f"{n}Function" for n in named} == set(lambda_functions)
    logs = {k.removesuffix("FunctionLogGroupName") for k in template["Outputs"] if k.endswith("FunctionLogGroupName")}
    assert logs == named == set(FUNCTIONS)


def test_echoed_parameters_and_operations(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in ECHOED_PARAMETERS:
        assert outputs[name]["Value"] == {"Ref": name} and "Condition" not in outputs[name]
    assert outputs["AlarmNamePrefix"]["Value"] == {"Fn::Sub": "${AWS::StackName}-"}
    assert "Condition" not in outputs["AlarmNamePrefix"]
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
    assert outputs["AlarmTopicArn"]["Condition"] == outputs["DashboardName"]["Condition"] == "AlarmsOn"
    assert outputs["DashboardName"]["Value"] == {"Ref": "Dashboard"}


def test_every_output_says_what_it_is(template: dict[str, Any]) -> None:
    for key, output in template["Outputs"].items():
        assert isinstance(output.get("Description"), str) and len(output["Description"]) > 10, key
