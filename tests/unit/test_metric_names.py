"""swapdrop.metric_names is the one list of metric names: every name the code emits is in it, and
nothing in it is dead. The template's alarms and dashboard are checked against it (tests/template).

An AST scan of layers/ and functions/ reads the name of every add_metric / single_metric call: a
literal, a registry attribute (metric_names.X), a registry call (jobs_ended), a module constant, or a
parameter whose callers in the same module pass one of those. Anything else fails, by file and line.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from swapdrop import metric_names, task_snapshot
from swapdrop.job_metrics import record_finished
from swapdrop.jobs import JobStatus
from swapdrop.observability import metrics, publish_metrics

from .builders import make_job

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "layers").rglob("*.py"), *(ROOT / "functions").rglob("*.py")])
REGISTRY_MODULE = "swapdrop.metric_names"
EMITTERS = {"add_metric", "single_metric"}

# Names that reach an emitter through data, not code: task_snapshot notes (field, metric) pairs while
# validating and counts them afterwards. Its two metrics are checked below (test_task_snapshot_notes).
THROUGH_DATA = {("task_snapshot.py", "_count"): {task_snapshot.IGNORED, task_snapshot.CLAMPED}}


class Unresolved(Exception):
    pass


class Module:
    """One source file: its registry aliases, module constants and functions (for call-site lookups)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        self.aliases: set[str] = set()
        self.constants: dict[str, ast.expr] = {}
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "swapdrop":
                self.aliases |= {a.asname or a.name for a in node.names if a.name == "metric_names"}
            elif isinstance(node, ast.Import):
                self.aliases |= {a.asname for a in node.names if a.name == REGISTRY_MODULE and a.asname}
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self.constants[node.targets[0].id] = node.value
        self.functions = {
            node.name: node for node in ast.walk(self.tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }

    def names(self, node: ast.expr, function: ast.FunctionDef | None, depth: int = 0) -> set[str]:
        """The metric names `node` can evaluate to."""
        if depth > 4:
            raise Unresolved("too many hops")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            return self.names(node.body, function, depth) | self.names(node.orelse, function, depth)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            value = getattr(metric_names, node.attr, None)
            if not isinstance(value, str):
                raise Unresolved(f"metric_names.{node.attr} is not a registered name")
            return {value}
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in self.aliases
            and node.func.attr == "jobs_ended"
        ):
            return set(metric_names.JOBS_BY_STATUS.values())
        if isinstance(node, ast.Name):
            if function is not None and node.id in _parameters(function):
                return self._from_callers(function, node.id, depth)
            if node.id in self.constants:
                return self.names(self.constants[node.id], None, depth + 1)
        raise Unresolved(ast.unparse(node))

    def _from_callers(self, function: ast.FunctionDef, parameter: str, depth: int) -> set[str]:
        position = _parameters(function).index(parameter)
        found: set[str] = set()
        for caller in self.functions.values():
            for call in ast.walk(caller):
                if not (isinstance(call, ast.Call) and _called_name(call) == function.name):
                    continue
                offset = 1 if _parameters(function)[:1] == ["self"] else 0
                keyword = next((k.value for k in call.keywords if k.arg == parameter), None)
                argument = keyword if keyword is not None else _positional(call, position - offset)
                if argument is None:
                    raise Unresolved(f"a call of {function.name} without {parameter}")
                found |= self.names(argument, caller, depth + 1)
        if not found:
            raise Unresolved(f"{function.name}({parameter}) has no caller in its module")
        return found


def _parameters(function: ast.FunctionDef) -> list[str]:
    return [a.arg for a in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)]


def _positional(call: ast.Call, index: int) -> ast.expr | None:
    return call.args[index] if 0 <= index < len(call.args) else None


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def emitter_calls(module: Module) -> Iterator[tuple[ast.Call, ast.FunctionDef | None]]:
    """Every add_metric / single_metric call with the function it sits in (None at module level)."""
    for function in [*module.functions.values(), None]:
        scope = function if function is not None else module.tree
        for node in ast.walk(scope):
            if isinstance(node, ast.Call) and _called_name(node) in EMITTERS:
                yield node, function


def scan() -> tuple[dict[str, set[str]], list[str]]:
    """Metric name -> where it is emitted; and the calls whose name could not be read."""
    emitted: dict[str, set[str]] = {}
    problems: list[str] = []
    for path in SOURCES:
        module = Module(path)
        seen: set[int] = set()
        for call, function in emitter_calls(module):
            if id(call) in seen:  # ast.walk of the module repeats what the functions' walks found
                continue
            seen.add(id(call))
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            name = next((k.value for k in call.keywords if k.arg == "name"), _positional(call, 0))
            if name is None:
                problems.append(f"{where}: no metric name")
                continue
            through_data = THROUGH_DATA.get((path.name, function.name if function else ""))
            try:
                names = through_data or module.names(name, function)
            except Unresolved as error:
                problems.append(f"{where}: cannot tell which metric {ast.unparse(name)!r} names ({error})")
                continue
            for metric in names:
                emitted.setdefault(metric, set()).add(where)
    return emitted, problems


@pytest.fixture(scope="module")
def emitted() -> dict[str, set[str]]:
    found, problems = scan()
    assert not problems, "name metrics with a literal or a swapdrop.metric_names attribute:\n" + "\n".join(problems)
    return found


def test_the_scan_finds_the_emitters(emitted: dict[str, set[str]]) -> None:
    """Guards the scan itself: names emitted in several ways are all found."""
    assert "UploadsDropped" in emitted  # through a parameter (_dropped)
    assert {"UpstreamCancels", "UpstreamCancelsMissed"} <= set(emitted)  # a conditional expression
    assert {"JobsSuccess", "JobsCancelled", "JobDuration"} <= set(emitted)  # registry call and attribute
    assert "UpstreamSubmitLatency" in emitted and "MalformedMessages" in emitted  # layer and a handler


def test_every_emitted_metric_is_registered(emitted: dict[str, set[str]]) -> None:
    unknown = {name: sorted(where) for name, where in emitted.items() if name not in metric_names.ALL}
    assert not unknown, f"add these to swapdrop/metric_names.py: {unknown}"


def test_all_is_every_constant_of_the_registry() -> None:
    constants = {v for k, v in vars(metric_names).items() if k.isupper() and isinstance(v, str)}
    assert constants == metric_names.ALL


def test_no_registered_metric_is_dead(emitted: dict[str, set[str]]) -> None:
    dead = sorted(metric_names.ALL - set(emitted))
    assert not dead, f"registered but never emitted (remove them, or emit them): {dead}"


def test_an_unreadable_name_is_reported(tmp_path: Path) -> None:
    source = tmp_path / "dynamic.py"
    source.write_text('def f(status):\n    metrics.add_metric(name=f"Jobs{status}", unit="Count", value=1)\n')
    module = Module(source)
    ((call, function),) = list(emitter_calls(module))[:1]
    with pytest.raises(Unresolved):
        module.names(call.keywords[0].value, function)


def test_every_terminal_status_has_its_count() -> None:
    terminal = {status.value for status in JobStatus if status.is_terminal}
    assert set(metric_names.JOBS_BY_STATUS) == terminal
    assert all(metric_names.jobs_ended(status).startswith("Jobs") for status in terminal)


def test_task_snapshot_notes_only_registered_metrics() -> None:
    """The (field, metric) notes THROUGH_DATA trusts: every _note call passes IGNORED or CLAMPED."""
    module = Module(Path(task_snapshot.__file__))
    passed = {
        ast.unparse(call.args[2])
        for call in ast.walk(module.tree)
        if isinstance(call, ast.Call) and _called_name(call) == "_note"
    }
    assert passed == {"IGNORED", "CLAMPED"}
    assert {task_snapshot.IGNORED, task_snapshot.CLAMPED} <= metric_names.ALL


def emf_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_job_duration_carries_the_dimensions_the_registry_says(capsys: pytest.CaptureFixture[str]) -> None:
    """The template's widgets name JobDuration with exactly these dimensions."""
    record_finished(make_job(status=JobStatus.SUCCESS, finishedAt="2024-10-16T10:00:21.500Z"))
    (line,) = emf_lines(capsys.readouterr().out)
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Metrics"] == [{"Name": "JobDuration", "Unit": "Seconds"}]
    assert tuple(sorted(directive["Dimensions"][0])) == metric_names.dimensions("JobDuration") == ("Status", "service")
    assert line["JobDuration"] == [60.0]
    # the counts went to the invocation's buffer, which carries only `service`
    assert set(metrics.metric_set) == {"JobsSuccess"}
    assert metric_names.dimensions("JobsSuccess") == ("service",)


# --- flushing: only when there are metrics ---------------------------------------------------------


def test_powertools_log_metrics_warns_on_an_invocation_without_metrics() -> None:
    """Why publish_metrics exists: the stock decorator warns on every quiet invocation."""
    with pytest.warns(UserWarning, match="No application metrics to publish"):
        metrics.log_metrics(lambda event, context: None)({}, None)


def test_an_invocation_without_metrics_prints_and_warns_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    handler = publish_metrics(lambda event, context: "answer")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert handler({}, None) == "answer"
    assert capsys.readouterr().out == ""


def test_an_invocation_with_metrics_flushes_them_once(capsys: pytest.CaptureFixture[str]) -> None:
    def handler(event: dict, context: object) -> None:
        metrics.add_metric(name="JobsCreated", unit="Count", value=1)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        publish_metrics(handler)({}, None)
        publish_metrics(lambda event, context: None)({}, None)  # the next, quiet invocation
    (line,) = emf_lines(capsys.readouterr().out)
    assert line["JobsCreated"] == [1.0] and line["service"] == "swapdrop"
    assert metrics.metric_set == {}


def test_metrics_are_flushed_when_the_handler_raises(capsys: pytest.CaptureFixture[str]) -> None:
    def handler(event: dict, context: object) -> None:
        metrics.add_metric(name="ReconcileErrors", unit="Count", value=1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        publish_metrics(handler)({}, None)
    assert [line["ReconcileErrors"] for line in emf_lines(capsys.readouterr().out)] == [[1.0]]
    assert metrics.metric_set == {}


def test_every_handler_publishes_with_publish_metrics() -> None:
    handlers = sorted((ROOT / "functions").glob("*/*_handler.py"))
    assert len(handlers) == 6
    for path in handlers:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        (handler,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler"]
        decorators = [ast.unparse(d) for d in handler.decorator_list]
        assert "publish_metrics" in decorators, f"{path.name}: {decorators}"
    stock = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "log_metrics"
    ]
    assert not stock, f"metrics.log_metrics warns on quiet invocations; use observability.publish_metrics: {stock}"
