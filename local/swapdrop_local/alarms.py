"""The template's alarm topic, CloudWatch alarms and dashboard on moto (when its Conditions hold).

`swapdrop doctor` reads the alarms' states and the stack's AlarmTopicArn/DashboardName outputs the same
way on AWS and locally, so the local stack creates them from the template itself: every property
resolved, metric math included. moto creates them in OK and never evaluates them (nor reads the
functions' EMF metrics from their logs): set_alarm_state puts one in ALARM to see what `doctor` says.
"""

from __future__ import annotations

from typing import Any

from swapdrop_local.template import Resolver, resources_of_type

ALARM_PROPERTIES = {
    "AlarmName": str,
    "AlarmDescription": str,
    "ActionsEnabled": bool,
    "OKActions": list,
    "AlarmActions": list,
    "InsufficientDataActions": list,
    "MetricName": str,
    "Namespace": str,
    "Statistic": str,
    "ExtendedStatistic": str,
    "Dimensions": list,
    "Period": int,
    "Unit": str,
    "EvaluationPeriods": int,
    "DatapointsToAlarm": int,
    "Threshold": float,
    "ComparisonOperator": str,
    "TreatMissingData": str,
    "EvaluateLowSampleCountPercentile": str,
    "Metrics": list,
    "ThresholdMetricId": str,
}
"""AWS::CloudWatch::Alarm's properties that are put_metric_alarm's parameters, with the API's types."""


def create_monitoring(resolver: Resolver, sns: Any, cloudwatch: Any) -> None:
    """Topics (and their subscriptions), then alarms (their actions name the topic), then dashboards."""
    for name, spec in _present(resolver, "AWS::SNS::Topic"):
        properties = resolver.resolve(spec.get("Properties") or {})
        topic_name = properties.get("TopicName") or f"{resolver.stack_name}-{name}"
        attributes = {"DisplayName": properties["DisplayName"]} if "DisplayName" in properties else {}
        arn = sns.create_topic(Name=topic_name, Attributes=attributes)["TopicArn"]
        resolver.refs[name] = arn
        resolver.attributes[(name, "TopicArn")] = arn
        resolver.attributes[(name, "TopicName")] = topic_name
    for _name, spec in _present(resolver, "AWS::SNS::Subscription"):
        properties = resolver.resolve(spec["Properties"])
        sns.subscribe(TopicArn=properties["TopicArn"], Protocol=properties["Protocol"], Endpoint=properties["Endpoint"])
    for name, spec in _present(resolver, "AWS::CloudWatch::Alarm"):
        request = alarm_request(resolver.resolve(spec["Properties"]), f"{resolver.stack_name}-{name}")
        cloudwatch.put_metric_alarm(**request)
        resolver.refs[name] = request["AlarmName"]
    for name, spec in _present(resolver, "AWS::CloudWatch::Dashboard"):
        properties = resolver.resolve(spec["Properties"])
        dashboard = properties.get("DashboardName") or f"{resolver.stack_name}-{name}"
        cloudwatch.put_dashboard(DashboardName=dashboard, DashboardBody=properties["DashboardBody"])
        resolver.refs[name] = dashboard


def alarm_request(properties: dict[str, Any], default_name: str) -> dict[str, Any]:
    """put_metric_alarm's parameters from an alarm's resolved properties (CloudFormation keeps numbers as text)."""
    request: dict[str, Any] = {"AlarmName": default_name}
    for key, value in properties.items():
        if key not in ALARM_PROPERTIES:
            continue
        kind = ALARM_PROPERTIES[key]
        if kind is bool:
            value = str(value).lower() == "true"
        elif kind in (int, float):
            value = kind(value)
        request[key] = value
    for query in request.get("Metrics", []):
        if "ReturnData" in query:
            query["ReturnData"] = str(query["ReturnData"]).lower() == "true"
        for holder in (query, query.get("MetricStat", {})):
            if "Period" in holder:
                holder["Period"] = int(holder["Period"])
    return request


def _present(resolver: Resolver, resource_type: str) -> list[tuple[str, dict[str, Any]]]:
    """The template's resources of this type whose Condition holds with the local parameters."""
    return [
        (name, spec)
        for name, spec in resources_of_type(resolver.template, resource_type).items()
        if "Condition" not in spec or resolver.condition(spec["Condition"])
    ]
