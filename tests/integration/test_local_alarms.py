"""The local stack creates the template's alarm topic, alarms (metric math included) and dashboard on moto
when EnableAlarms holds, and none of them when it does not; the stack's outputs name them."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from swapdrop_local.alarms import alarm_request
from swapdrop_local.cloudformation import stack_outputs
from swapdrop_local.provision import LocalStack, local_client, provision
from swapdrop_local.template import load_template, resources_of_type

REGION = "us-east-1"
_names = itertools.count(1)


def _provision(endpoint: str, **parameters: str) -> LocalStack:
    return provision(
        endpoint,
        REGION,
        callback_base_url="http://127.0.0.1:9",
        parameter_overrides=parameters,
        stack_name=f"alarms-test-{next(_names)}",
    )


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of_type(template, "AWS::CloudWatch::Alarm")


def test_the_template_has_alarms_a_topic_and_a_dashboard() -> None:
    """So the tests below check something (issue 9's template)."""
    template = load_template()
    assert _alarms(template)
    assert resources_of_type(template, "AWS::SNS::Topic")
    assert resources_of_type(template, "AWS::CloudWatch::Dashboard")


def test_alarms_topic_and_dashboard_exist_with_the_templates_properties(moto_endpoint: str) -> None:
    stack = _provision(moto_endpoint, EnableAlarms="true")
    assert stack.resolver is not None
    cloudwatch = local_client("cloudwatch", REGION, moto_endpoint)
    found = {
        a["AlarmName"]: a
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{stack.stack_name}-")
        for a in page["MetricAlarms"]
    }
    topics = [t["TopicArn"] for t in local_client("sns", REGION, moto_endpoint).list_topics()["Topics"]]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack_outputs(stack.resolver, {"CallbackApi": "http://h"})}
    assert outputs["AlarmTopicArn"] in topics
    template_alarms = _alarms(stack.template)
    assert len(found) == len(template_alarms)
    for logical, spec in template_alarms.items():
        properties = stack.resolver.resolve(spec["Properties"])
        alarm = found[properties["AlarmName"]]
        assert alarm["AlarmName"].startswith(outputs["AlarmNamePrefix"]), logical
        assert alarm["AlarmDescription"] == properties["AlarmDescription"], logical
        assert alarm["AlarmActions"] == [outputs["AlarmTopicArn"]], logical
        assert alarm["ComparisonOperator"] == properties["ComparisonOperator"], logical
        assert alarm["EvaluationPeriods"] == int(properties["EvaluationPeriods"]), logical
        queries = {q["Id"]: q for q in alarm.get("Metrics", [])}
        assert set(queries) == {q["Id"] for q in properties.get("Metrics", [])}, logical
        for query in properties.get("Metrics", []):
            if "Expression" in query:
                assert queries[query["Id"]]["Expression"] == query["Expression"], logical
            else:
                metric = queries[query["Id"]]["MetricStat"]["Metric"]
                assert metric["MetricName"] == query["MetricStat"]["Metric"]["MetricName"], logical
                assert metric.get("Dimensions", []) == query["MetricStat"]["Metric"].get("Dimensions", []), logical
        if "MetricName" in properties:
            assert alarm["MetricName"] == properties["MetricName"], logical
            assert alarm["Dimensions"] == properties.get("Dimensions", []), logical
    dashboard = cloudwatch.get_dashboard(DashboardName=outputs["DashboardName"])
    assert json.loads(dashboard["DashboardBody"])["widgets"]


def test_alarm_dimensions_name_local_resources(moto_endpoint: str) -> None:
    """A dimension naming a queue or a function names one the local stack has (else it would never fire)."""
    stack = _provision(moto_endpoint, EnableAlarms="true")
    assert stack.resolver is not None
    sqs = local_client("sqs", REGION, moto_endpoint)
    queues = {url.rsplit("/", 1)[-1] for url in sqs.list_queues(QueueNamePrefix=stack.stack_name)["QueueUrls"]}
    functions = set(resources_of_type(stack.template, "AWS::Serverless::Function"))
    dimensions = []
    for spec in _alarms(stack.template).values():
        properties = stack.resolver.resolve(spec["Properties"])
        dimensions += properties.get("Dimensions", [])
        for query in properties.get("Metrics", []):
            dimensions += query.get("MetricStat", {}).get("Metric", {}).get("Dimensions", [])
    assert dimensions
    for dimension in dimensions:
        if dimension["Name"] == "QueueName":
            assert dimension["Value"] in queues
        elif dimension["Name"] == "FunctionName":
            assert dimension["Value"] in functions
        elif dimension["Name"] == "service":
            assert dimension["Value"] == stack.environments["SubmitFunction"]["POWERTOOLS_SERVICE_NAME"]


def test_no_alarms_topic_or_dashboard_when_alarms_are_off(moto_endpoint: str) -> None:
    stack = _provision(moto_endpoint, EnableAlarms="false")
    assert stack.resolver is not None
    cloudwatch = local_client("cloudwatch", REGION, moto_endpoint)
    assert cloudwatch.describe_alarms(AlarmNamePrefix=f"{stack.stack_name}-")["MetricAlarms"] == []
    assert not [d for d in cloudwatch.list_dashboards()["DashboardEntries"] if stack.stack_name in d["DashboardName"]]
    outputs = {o["OutputKey"] for o in stack_outputs(stack.resolver, {"CallbackApi": "http://h"})}
    assert not outputs & {"AlarmTopicArn", "DashboardName"}
    assert "AlarmNamePrefix" in outputs


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (
            {"Period": "300", "Threshold": "0", "EvaluationPeriods": "2", "ActionsEnabled": "false", "Other": 1},
            {"AlarmName": "n", "Period": 300, "Threshold": 0.0, "EvaluationPeriods": 2, "ActionsEnabled": False},
        ),
        (
            {"Metrics": [{"Id": "m", "ReturnData": "false", "MetricStat": {"Period": "60", "Stat": "Sum"}}]},
            {
                "AlarmName": "n",
                "Metrics": [{"Id": "m", "ReturnData": False, "MetricStat": {"Period": 60, "Stat": "Sum"}}],
            },
        ),
    ],
)
def test_alarm_requests_have_the_apis_types(properties: dict[str, Any], expected: dict[str, Any]) -> None:
    assert alarm_request(properties, "n") == expected
