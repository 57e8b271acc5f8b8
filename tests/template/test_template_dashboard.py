"""The dashboard: its body (an Fn::Sub of JSON) parses, has the widgets the issue lists, and every
metric it graphs is one the code emits (namespace Swapdrop, the emitted dimensions) or an AWS metric
of this stack's resources. Rows are written in full (no "." shorthand), so each can be checked.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfn_template import parameter_defaults, resolve
from swapdrop import metric_names
from swapdrop_local.template import Resolver

VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
MAX_METRICS = 50  # a dashboard of up to 50 metrics is one billed dashboard ($3 a month past the free three)


def marked(text: str) -> str:
    """The body with each ${X} as @X@: it parses as JSON, and each value still says what it names."""
    return VARIABLE.sub(lambda m: f"@{m.group(1)}@", text)


@pytest.fixture(scope="module")
def dashboard(resources: dict[str, Any]) -> dict[str, Any]:
    return resources["Dashboard"]


@pytest.fixture(scope="module")
def body(dashboard: dict[str, Any]) -> dict[str, Any]:
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str), "DashboardBody is one Fn::Sub string (the local stack resolves it the same way)"
    return json.loads(marked(text))


def widgets(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in body["widgets"] if w["type"] == "metric"]


def rows(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(namespace, metric, dimensions, options) of each metric row of a widget."""
    found = []
    for row in widget["properties"]["metrics"]:
        options = row[-1] if isinstance(row[-1], dict) else {}
        plain = row[:-1] if options else row
        assert "." not in plain, f"{widget['properties']['title']}: write rows in full, not {row}"
        assert "expression" not in options, f"{widget['properties']['title']}: expressions are not checked here"
        namespace, metric, *pairs = plain
        assert len(pairs) % 2 == 0, row
        found.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2], strict=True)), options))
    return found


def all_rows(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    return [row for widget in widgets(body) for row in rows(widget)]


def test_the_dashboard_is_the_stacks_and_only_when_alarms_are_on(
    dashboard: dict[str, Any], template: dict[str, Any]
) -> None:
    assert dashboard["Condition"] == "AlarmsOn"
    assert dashboard["Properties"]["DashboardName"] == {"Fn::Sub": "${AWS::StackName}"}
    assert template["Outputs"]["DashboardName"] == {
        "Condition": "AlarmsOn",
        "Description": template["Outputs"]["DashboardName"]["Description"],
        "Value": {"Ref": "Dashboard"},
    }


def test_every_metric_widget_is_in_the_stacks_region(body: dict[str, Any]) -> None:
    for widget in widgets(body):
        assert widget["properties"]["region"] == "@AWS::Region@", widget["properties"]["title"]
        assert widget["properties"]["period"] == 300, widget["properties"]["title"]
    assert sum(len(w["properties"]["metrics"]) for w in widgets(body)) <= MAX_METRICS


SERVICE = "@AWS::StackName@"
"""The `service` dimension as the body spells it: POWERTOOLS_SERVICE_NAME is !Ref AWS::StackName."""


def row_problems(found: list[tuple[str, str, dict[str, str], dict[str, Any]]], resources: dict[str, Any]) -> list[str]:
    """Why a row would graph nothing: an unknown metric, other dimensions, or a resource not in this stack."""
    kinds = {("AWS/Lambda", "FunctionName"): "AWS::Serverless::Function", ("AWS/SQS", "QueueName"): "AWS::SQS::Queue"}
    problems = []
    for namespace, metric, dimensions, _ in found:
        if namespace == "Swapdrop":
            emitted = metric_names.dimensions(metric) if metric in metric_names.ALL else None
            if emitted is None:
                problems.append(f"{metric} is not a metric the code emits")
            elif tuple(sorted(dimensions)) != emitted:
                problems.append(f"{metric}: dimensions {sorted(dimensions)}, emitted with {list(emitted)}")
            elif dimensions["service"] != SERVICE:
                problems.append(f"{metric}: service {dimensions['service']}")
            continue
        if len(dimensions) != 1 or (namespace, next(iter(dimensions))) not in kinds:
            problems.append(f"{namespace} {metric}: dimensions {sorted(dimensions)}")
            continue
        ((dimension, value),) = dimensions.items()
        kind = kinds[(namespace, dimension)]
        reference = value.removeprefix("@").removesuffix("@")
        logical = reference.removesuffix(".QueueName") if kind == "AWS::SQS::Queue" else reference
        if value != f"@{reference}@" or (kind == "AWS::SQS::Queue") != (logical != reference):
            problems.append(f"{namespace} {metric}: {value} is not a reference to the resource's name")
        elif resources.get(logical, {}).get("Type") != kind:
            problems.append(f"{namespace} {metric}: {logical} is not a {kind} of this template")
    return problems


def test_every_metric_is_emitted_by_the_code_or_this_stacks_resources(
    body: dict[str, Any], template: dict[str, Any], resources: dict[str, Any]
) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Swapdrop"
    assert variables["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}
    problems = row_problems(all_rows(body), resources)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("row", "complaint"),
    [
        (("Swapdrop", "JobsSucceeded", {"service": SERVICE}), "not a metric the code emits"),
        (("Swapdrop", "JobDuration", {"service": SERVICE}), "emitted with ['Status', 'service']"),
        (("Swapdrop", "JobsSuccess", {"service": SERVICE, "Status": "SUCCESS"}), "emitted with ['service']"),
        (("Swapdrop", "JobsSuccess", {"service": "swapdrop"}), "service swapdrop"),
        (("AWS/Lambda", "Errors", {"FunctionName": "@SubmitQueue@"}), "is not a AWS::Serverless::Function"),
        (("AWS/Lambda", "Errors", {"FunctionName": "swapdrop-submit"}), "not a reference"),
        (("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": "@SubmitQueue@"}), "not a reference"),
        (("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": "@OtherQueue.QueueName@"}), "not a AWS::SQS"),
    ],
)
def test_the_row_check_catches_a_row_that_would_graph_nothing(
    resources: dict[str, Any], row: tuple[str, str, dict[str, str]], complaint: str
) -> None:
    problems = row_problems([(*row, {})], resources)
    assert len(problems) == 1 and complaint in problems[0], problems


def widget_with(body: dict[str, Any], *metrics: str) -> dict[str, Any]:
    for widget in widgets(body):
        if set(metrics) <= {metric for _, metric, _, _ in rows(widget)}:
            return widget
    raise AssertionError(f"no widget graphs {metrics}")


def test_jobs_by_outcome(body: dict[str, Any]) -> None:
    widget = widget_with(body, *metric_names.JOBS_BY_STATUS.values())
    assert widget["properties"]["stat"] == "Sum"


def test_time_to_terminal_status_p50_p90_p99(body: dict[str, Any]) -> None:
    widget = widget_with(body, metric_names.JOB_DURATION)
    stats = sorted(options["stat"] for _, _, _, options in rows(widget))
    assert stats == ["p50", "p90", "p99"]
    assert {d["Status"] for _, _, d, _ in rows(widget)} == {"SUCCESS"}


def test_upstream_submit_latency(body: dict[str, Any]) -> None:
    widget = widget_with(body, metric_names.UPSTREAM_SUBMIT_LATENCY)
    assert sorted(options["stat"] for _, _, _, options in rows(widget)) == ["p50", "p90", "p99"]


def test_queue_depth_of_every_queue_and_age_of_every_work_queue(
    body: dict[str, Any], resources: dict[str, Any]
) -> None:
    queues = {name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}

    def graphed(metric: str) -> set[str]:
        return {d["QueueName"].strip("@").removesuffix(".QueueName") for _, m, d, _ in all_rows(body) if m == metric}

    assert graphed("ApproximateNumberOfMessagesVisible") == queues
    assert graphed("ApproximateAgeOfOldestMessage") == {q for q in queues if "DeadLetter" not in q}


def test_open_jobs_callbacks_vs_polls_and_errors(body: dict[str, Any], lambda_functions: dict[str, Any]) -> None:
    widget_with(body, metric_names.OPEN_JOBS_EXAMINED)
    widget_with(body, metric_names.JOBS_FINISHED_BY_CALLBACK, metric_names.JOBS_FINISHED_BY_POLL)
    errors = widget_with(body, "Errors")
    assert {d["FunctionName"].strip("@") for _, m, d, _ in rows(errors) if m == "Errors"} == set(lambda_functions)
    pipeline = widget_with(body, metric_names.RECONCILE_ERRORS, metric_names.RESULT_COPY_FAILURES)
    assert metric_names.CALLBACKS_FORBIDDEN in {m for _, m, _, _ in rows(pipeline)}


def test_the_text_widget_points_at_the_cli(body: dict[str, Any]) -> None:
    (text,) = [w for w in body["widgets"] if w["type"] == "text"]
    assert "`swapdrop doctor`" in text["properties"]["markdown"]


def test_the_local_stack_and_the_tests_resolve_the_body_to_json(
    dashboard: dict[str, Any], template: dict[str, Any]
) -> None:
    """H5's local stack creates this dashboard in moto through swapdrop_local's resolver."""
    source = dashboard["Properties"]["DashboardBody"]
    resolver = Resolver(template, "eu-west-1", stack_name="swapdrop-local")
    for name in set(VARIABLE.findall(source["Fn::Sub"])):
        if "." in name:
            logical, attribute = name.split(".", 1)
            resolver.attributes[(logical, attribute)] = f"{logical.lower()}-queue"
        elif not name.startswith("AWS::"):
            resolver.refs[name] = f"{name.lower()}-local"
    local = json.loads(resolver.resolve(source))
    assert all(w["properties"]["region"] == "eu-west-1" for w in widgets(local))
    assert widget_with(local, "JobsSuccess")["properties"]["metrics"][0][:4] == [
        "Swapdrop",
        "JobsSuccess",
        "service",
        "swapdrop-local",
    ]
    deployed = json.loads(resolve(template, source, parameter_defaults(template)))
    assert len(deployed["widgets"]) == len(local["widgets"])
