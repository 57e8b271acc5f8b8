"""The alarms, their topic and what they watch.

An alarm on a metric name or dimension set the code never emits stays in INSUFFICIENT_DATA (or OK)
forever and nobody notices: every Swapdrop metric an alarm names must be in swapdrop.metric_names with
exactly the dimensions the functions emit, and every AWS/* metric must point at this stack's resources.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import pytest
from cfn_template import evaluate_condition, parameter_defaults
from swapdrop import metric_names

ALARM = "AWS::CloudWatch::Alarm"
# What the operator is told to run: `swapdrop <command>` with a real command, `logs` with a real function.
CLI_COMMANDS = {"dlq", "doctor", "logs", "jobs", "status"}
LOG_FUNCTIONS = {"submit", "callback", "reconcile", "api", "request", "webhook"}
# The issue's list, as (namespace, metric) each alarm must watch.
REQUIRED = {
    "submit-dead-letters": {("AWS/SQS", "ApproximateNumberOfMessagesVisible")},
    "swap-request-dead-letters": {("AWS/SQS", "ApproximateNumberOfMessagesVisible")},
    "webhook-dead-letters": {("AWS/SQS", "ApproximateNumberOfMessagesVisible")},
    "submit-queue-age": {("AWS/SQS", "ApproximateAgeOfOldestMessage")},
    "function-errors": {("AWS/Lambda", "Errors")},
    "function-throttles": {("AWS/Lambda", "Throttles")},
    "job-failure-rate": {("Swapdrop", "JobsSuccess"), ("Swapdrop", "JobsFailure")},
    "reconcile-errors": {("Swapdrop", "ReconcileErrors")},
    "reconciler-silent": {("AWS/Lambda", "Invocations")},
    "callbacks-forbidden": {("Swapdrop", "CallbacksForbidden")},
    "result-copy-failures": {("Swapdrop", "ResultCopyFailures")},
}
COST_PER_ALARM_METRIC = 0.10  # USD a month, standard resolution; a metric-math alarm pays per metric it reads


@pytest.fixture(scope="module")
def alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == ALARM}


def purpose(alarm: dict[str, Any]) -> str:
    name = alarm["Properties"]["AlarmName"]
    assert isinstance(name, dict) and set(name) == {"Fn::Sub"}, name
    text = name["Fn::Sub"]
    assert text.startswith("${AWS::StackName}-"), text
    return text.removeprefix("${AWS::StackName}-")


def metrics_of(alarm: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each metric an alarm reads: {Namespace, MetricName, Dimensions}."""
    props = alarm["Properties"]
    if "Metrics" in props:
        for query in props["Metrics"]:
            if "MetricStat" in query:
                yield query["MetricStat"]["Metric"]
    else:
        yield {k: props[k] for k in ("Namespace", "MetricName", "Dimensions") if k in props}


def test_every_alarm_the_issue_asks_for_exists_once(alarms: dict[str, dict[str, Any]]) -> None:
    purposes = [purpose(a) for a in alarms.values()]
    assert sorted(purposes) == sorted(REQUIRED), purposes
    for alarm in alarms.values():
        watched = {(m["Namespace"], m["MetricName"]) for m in metrics_of(alarm)}
        assert watched == REQUIRED[purpose(alarm)], f"{purpose(alarm)} watches {watched}"


def test_alarm_names_are_the_prefix_and_a_kebab_purpose(
    alarms: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    for name, alarm in alarms.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", purpose(alarm)), f"{name}: {purpose(alarm)}"
    assert template["Outputs"]["AlarmNamePrefix"]["Value"] == {"Fn::Sub": "${AWS::StackName}-"}


def test_alarms_notify_the_topic_both_ways_and_exist_only_when_enabled(alarms: dict[str, dict[str, Any]]) -> None:
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert alarm.get("Condition") == "AlarmsOn", name
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props.get("ActionsEnabled", True) is True, name


def test_missing_data_is_a_decision_and_only_a_silent_reconciler_breaches(alarms: dict[str, dict[str, Any]]) -> None:
    """Custom metrics and idle queues send no data when all is well; no Invocations means no reconciler."""
    for name, alarm in alarms.items():
        treat = alarm["Properties"].get("TreatMissingData")
        want = "breaching" if purpose(alarm) == "reconciler-silent" else "notBreaching"
        assert treat == want, f"{name}: TreatMissingData {treat!r}, want {want!r}"


def test_every_description_says_what_to_run(alarms: dict[str, dict[str, Any]]) -> None:
    for name, alarm in alarms.items():
        text = alarm["Properties"]["AlarmDescription"]
        assert isinstance(text, str) and len(text) <= 1024, name
        commands = re.findall(r"`swapdrop ([a-z]+)([^`]*)`", text)
        assert commands, f"{name}: the description names no swapdrop command: {text}"
        for command, rest in commands:
            assert command in CLI_COMMANDS, f"{name}: swapdrop {command} is not a CLI command"
            if command == "logs":
                function = rest.split()[0]
                assert function in LOG_FUNCTIONS, f"{name}: swapdrop logs {function}: no such function"


def swapdrop_metric_problems(name: str, alarm: dict[str, Any], service: Any) -> list[str]:
    """Why the alarm's Swapdrop metrics would never see data (empty: they will)."""
    problems = []
    for metric in metrics_of(alarm):
        if metric["Namespace"] != "Swapdrop":
            if not metric["Namespace"].startswith("AWS/"):
                problems.append(f"{name}: namespace {metric['Namespace']}")
            continue
        metric_name = metric["MetricName"]
        if metric_name not in metric_names.ALL:
            problems.append(f"{name}: {metric_name} is not a metric the code emits")
            continue
        dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
        if tuple(sorted(dimensions)) != metric_names.dimensions(metric_name):
            problems.append(f"{name}: {metric_name} dimensions {sorted(dimensions)}, emitted with "
                            f"{list(metric_names.dimensions(metric_name))}")  # fmt: skip
        elif dimensions["service"] != service:
            problems.append(f"{name}: service {dimensions['service']!r}, the functions emit {service!r}")
    return problems


@pytest.fixture(scope="module")
def service(template: dict[str, Any]) -> Any:
    """The `service` dimension Powertools adds: POWERTOOLS_SERVICE_NAME, in namespace Swapdrop."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Swapdrop"
    return variables["POWERTOOLS_SERVICE_NAME"]


def test_swapdrop_metrics_are_registered_with_the_emitted_dimensions(
    alarms: dict[str, dict[str, Any]], service: Any
) -> None:
    problems = [p for name, alarm in alarms.items() for p in swapdrop_metric_problems(name, alarm, service)]
    assert not problems, "\n".join(problems)
    assert sum(m["Namespace"] == "Swapdrop" for a in alarms.values() for m in metrics_of(a)) == 5


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"MetricName": "ReconcileError"}, "not a metric the code emits"),
        ({"Dimensions": [{"Name": "Service", "Value": {"Ref": "AWS::StackName"}}]}, "dimensions ['Service']"),
        ({"Dimensions": []}, "dimensions []"),
        ({"Dimensions": [{"Name": "service", "Value": "swapdrop"}]}, "service 'swapdrop'"),
    ],
)
def test_the_dimension_check_catches_an_alarm_that_would_never_fire(
    alarms: dict[str, dict[str, Any]], service: Any, change: dict[str, Any], complaint: str
) -> None:
    broken = copy.deepcopy(alarms["ReconcileErrorsAlarm"])
    broken["Properties"].update(change)
    problems = swapdrop_metric_problems("ReconcileErrorsAlarm", broken, service)
    assert len(problems) == 1 and complaint in problems[0], problems


def test_aws_metrics_point_at_this_stacks_resources(
    alarms: dict[str, dict[str, Any]], resources: dict[str, Any]
) -> None:
    kinds = {"FunctionName": "AWS::Serverless::Function", "QueueName": "AWS::SQS::Queue"}
    for name, alarm in alarms.items():
        for metric in metrics_of(alarm):
            if metric["Namespace"] == "Swapdrop":
                continue
            (dimension,) = metric["Dimensions"]
            assert dimension["Name"] in kinds, f"{name}: dimension {dimension['Name']}"
            value = dimension["Value"]
            if dimension["Name"] == "FunctionName":
                target = value.get("Ref")
            else:
                assert set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "QueueName", f"{name}: {value}"
                target = value["Fn::GetAtt"][0]
            assert resources.get(target, {}).get("Type") == kinds[dimension["Name"]], f"{name}: {value}"


def test_every_dead_letter_queue_and_every_function_is_watched(
    alarms: dict[str, dict[str, Any]], resources: dict[str, Any], lambda_functions: dict[str, Any]
) -> None:
    def targets(metric_name: str) -> set[str]:
        found = set()
        for alarm in alarms.values():
            for metric in metrics_of(alarm):
                if metric["MetricName"] == metric_name and metric["Namespace"].startswith("AWS/"):
                    (value,) = [d["Value"] for d in metric["Dimensions"]]
                    found.add(value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0])
        return found

    dead_letter_queues = {n for n, r in resources.items() if r["Type"] == "AWS::SQS::Queue" and "DeadLetter" in n}
    assert len(dead_letter_queues) == 3
    assert targets("ApproximateNumberOfMessagesVisible") == dead_letter_queues
    assert targets("ApproximateAgeOfOldestMessage") == {"SubmitQueue"}
    assert targets("Errors") == set(lambda_functions)
    # ReconcileFunction's reserved concurrency of 1 throttles an overlapping tick by design.
    assert targets("Throttles") == set(lambda_functions) - {"ReconcileFunction"}
    assert targets("Invocations") == {"ReconcileFunction"}


def test_metric_math_alarms_return_one_series_from_their_own_queries(alarms: dict[str, dict[str, Any]]) -> None:
    for name, alarm in alarms.items():
        queries = alarm["Properties"].get("Metrics")
        if queries is None:
            continue
        assert not {"Namespace", "MetricName", "Statistic"} & set(alarm["Properties"]), name
        ids = {q["Id"] for q in queries}
        (returned,) = [q for q in queries if q.get("ReturnData")]
        used = set(re.findall(r"\b[a-z][A-Za-z0-9_]*\b", returned["Expression"])) - {"IF", "FILL", "SUM"}
        assert used == ids - {returned["Id"]}, f"{name}: the expression reads {used}, the queries are {ids}"
        assert all(re.fullmatch(r"[a-z][A-Za-z0-9_]*", i) for i in ids), name


def test_thresholds_come_from_parameters_where_operators_tune_them(
    alarms: dict[str, dict[str, Any]], parameters: dict[str, Any]
) -> None:
    by_purpose = {purpose(a): a["Properties"] for a in alarms.values()}
    assert by_purpose["submit-queue-age"]["Threshold"] == {"Ref": "SubmitQueueAgeAlarmSeconds"}
    assert by_purpose["job-failure-rate"]["Threshold"] == {"Ref": "JobFailureRateAlarmPercent"}
    assert by_purpose["reconciler-silent"]["Period"] == {"Ref": "ReconcileSilenceAlarmSeconds"}
    # an alarm period is 10, 30 or a multiple of 60 seconds, and period x periods is at most a day
    assert all(v % 60 == 0 and v <= 86400 for v in parameters["ReconcileSilenceAlarmSeconds"]["AllowedValues"])
    backoff_total = 30 + 60 + 120 + 240  # submission's backoff before the 5th attempt: legitimately old messages
    assert parameters["SubmitQueueAgeAlarmSeconds"]["MinValue"] < parameters["SubmitQueueAgeAlarmSeconds"]["Default"]
    assert parameters["SubmitQueueAgeAlarmSeconds"]["Default"] > backoff_total


def test_the_topic_takes_only_this_stacks_alarms(resources: dict[str, Any]) -> None:
    topic = resources["AlarmTopic"]
    assert topic["Condition"] == "AlarmsOn"
    assert topic["Properties"]["KmsMasterKeyId"] == {
        "Fn::If": ["UseCustomerKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]
    }
    policy = resources["AlarmTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "AlarmTopic"}]
    (allow,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Condition"]["ArnLike"]["aws:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AWS::StackName}-*"
    }
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert subscription["Properties"]["Protocol"] == "email"


@pytest.mark.parametrize(
    ("enable", "email", "alarms_on", "subscribed"),
    [("true", "", True, False), ("true", "ops@example.com", True, True), ("false", "ops@example.com", False, False)],
)
def test_enable_alarms_and_alarm_email(
    template: dict[str, Any], enable: str, email: str, alarms_on: bool, subscribed: bool
) -> None:
    params = parameter_defaults(template) | {"EnableAlarms": enable, "AlarmEmail": email}
    conditions = template["Conditions"]
    assert evaluate_condition(template, conditions["AlarmsOn"], params) is alarms_on
    assert evaluate_condition(template, conditions["SubscribeAlarmEmail"], params) is subscribed
    for name, resource in template["Resources"].items():
        if resource["Type"] in (ALARM, "AWS::SNS::Topic", "AWS::SNS::TopicPolicy", "AWS::CloudWatch::Dashboard"):
            assert resource["Condition"] == "AlarmsOn", name
    for output in ("AlarmTopicArn", "DashboardName"):
        assert template["Outputs"][output]["Condition"] == "AlarmsOn"


def test_alarms_are_on_by_default_and_the_email_pattern_is_sane(parameters: dict[str, Any]) -> None:
    assert parameters["EnableAlarms"]["Default"] == "true"
    assert parameters["EnableAlarms"]["AllowedValues"] == ["true", "false"]
    pattern = parameters["AlarmEmail"]["AllowedPattern"]
    for good in ("", "ops@example.com", "a.b+alarms@sub.example.org"):
        assert re.fullmatch(pattern, good), good
    for bad in ("ops", "ops@example", "two@example.com,three@example.com", "a b@example.com"):
        assert not re.fullmatch(pattern, bad), bad


def test_the_cost_the_parameter_states_is_the_alarm_metrics_count(
    alarms: dict[str, dict[str, Any]], parameters: dict[str, Any]
) -> None:
    count = sum(len(list(metrics_of(alarm))) for alarm in alarms.values())
    stated = parameters["EnableAlarms"]["Description"]
    assert f"${count * COST_PER_ALARM_METRIC:.2f} a month ({count} alarm" in stated, (count, stated)
