"""Read template.yaml as data: CloudFormation tags become {"Ref": ...}/{"Fn::X": ...} dicts.

Also the few SAM semantics the tests need (Globals merged into each function), and
walkers over intrinsic functions. No cfn-lint or samtranslator: those live in the
tools venv, and neither checks references inside SAM function properties.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

# The one CloudFormation-aware YAML loader, shared with the local stack that provisions from it.
from swapdrop_local.template import INTRINSIC_TAGS, TEMPLATE_PATH, CfnLoader, load_template  # noqa: F401 - re-exported

ROOT = TEMPLATE_PATH.parent

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)

FUNCTION_TYPE = "AWS::Serverless::Function"

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


# --------------------------------------------------------------------------- SAM globals


def _merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's rule: maps merge (the resource wins), lists add up (globals first), scalars: the resource."""
    if isinstance(global_value, dict) and isinstance(local_value, dict) and not _is_intrinsic(local_value):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


def _is_intrinsic(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and len(node) == 1
        and next(iter(node)) in {"Ref", "Condition"} | {f"Fn::{t}" for t in INTRINSIC_TAGS}
    )


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every AWS::Serverless::Function's Properties, with Globals.Function merged in."""
    global_props = template.get("Globals", {}).get("Function", {})
    result = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == FUNCTION_TYPE:
            result[name] = _merge_globals(global_props, resource.get("Properties", {}))
    return result


# --------------------------------------------------------------------------- intrinsics


def walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every node of a YAML tree with the path of keys/indices that leads to it."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def sub_variables(sub: Any) -> set[str]:
    """The ${Name} / ${Name.Attr} variables of an Fn::Sub that refer outside it (not its own map)."""
    if isinstance(sub, str):
        text, local = sub, {}
    else:
        text, local = sub[0], sub[1]
    return {name for name in _SUB_VARIABLE.findall(text) if name.split(".")[0] not in local}


def references(node: Any) -> Iterator[tuple[str, str, tuple[Any, ...]]]:
    """(kind, target, path) of every Ref, GetAtt and Sub variable under `node`.

    kind is "Ref", "GetAtt" or "Sub"; target is the logical name (for "X.Attr", X).
    """
    for path, value in walk(node):
        if not isinstance(value, dict) or len(value) != 1:
            continue
        ((key, argument),) = value.items()
        if key == "Ref" and isinstance(argument, str):
            yield "Ref", argument, path
        elif key == "Fn::GetAtt":
            target = argument[0] if isinstance(argument, list) else str(argument).split(".")[0]
            yield "GetAtt", target, path
        elif key == "Fn::Sub":
            for name in sub_variables(argument):
                # ${AWS::Region} stays whole; ${Resource.Attr} names Resource.
                yield "Sub", name if name.startswith("AWS::") else name.split(".")[0], path


def condition_names_used(node: Any) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Condition names used by Fn::If and Condition (inside Conditions and resources)."""
    for path, value in walk(node):
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Fn::If" and isinstance(argument, list) and argument:
                yield argument[0], path
            elif key == "Condition" and isinstance(argument, str):
                yield argument, path


def canonical(node: Any) -> str:
    """A hashable, order-independent spelling of a YAML value (for comparing resources in sets)."""
    return json.dumps(node, sort_keys=True)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- IAM


NO_VALUE_REF = {"Ref": "AWS::NoValue"}


def conditional_statements(props: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(condition, statement) of every `!If [Condition, statement, !Ref AWS::NoValue]` statement."""
    found = []
    for policy in as_list(props.get("Policies", [])):
        if isinstance(policy, dict) and "Statement" in policy:
            for statement in as_list(policy["Statement"]):
                branches = statement.get("Fn::If") if isinstance(statement, dict) else None
                if isinstance(branches, list) and len(branches) == 3 and branches[2] == NO_VALUE_REF:
                    found.append((branches[0], branches[1]))
    return found


def policy_statements(props: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """A SAM function's inline policy statements, and whatever else its Policies hold.

    A statement granted only under a condition (`!If [C, statement, !Ref AWS::NoValue]`)
    counts as its statement: the checks must hold when the condition is true.
    """
    statements: list[dict[str, Any]] = []
    others: list[Any] = []
    for policy in as_list(props.get("Policies", [])):
        if isinstance(policy, dict) and "Statement" in policy:
            for statement in as_list(policy["Statement"]):
                branches = statement.get("Fn::If") if isinstance(statement, dict) else None
                if branches is None:
                    statements.append(statement)
                elif isinstance(branches, list) and len(branches) == 3 and branches[2] == NO_VALUE_REF:
                    statements.append(branches[1])
                else:
                    others.append(statement)
        else:
            others.append(policy)
    return statements, others


def grants(props: dict[str, Any]) -> set[tuple[str, str]]:
    """(action, canonical resource) of every Allow in a function's inline policies."""
    statements, _ = policy_statements(props)
    result = set()
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        for action in as_list(statement.get("Action", [])):
            for resource in as_list(statement.get("Resource", [])):
                result.add((action, canonical(resource)))
    return result


# --------------------------------------------------------------------------- evaluating


def parameter_defaults(template: dict[str, Any]) -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}


def evaluate_condition(template: dict[str, Any], expression: Any, params: dict[str, Any]) -> bool:
    """Evaluate a Conditions expression with the given parameter values."""
    if isinstance(expression, dict) and len(expression) == 1:
        ((key, argument),) = expression.items()
        if key == "Fn::Equals":
            left, right = (resolve(template, a, params) for a in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not evaluate_condition(template, argument[0], params)
        if key == "Fn::And":
            return all(evaluate_condition(template, a, params) for a in argument)
        if key == "Fn::Or":
            return any(evaluate_condition(template, a, params) for a in argument)
        if key == "Condition":
            return evaluate_condition(template, template["Conditions"][argument], params)
    raise ValueError(f"cannot evaluate condition {expression!r}")


def fake_physical_id(logical_id: str, attribute: str | None = None) -> str:
    """A stand-in physical id/attribute value for a resource (the stack is not deployed)."""
    if attribute == "Arn":
        return f"arn:aws:fake:us-east-1:123456789012:{logical_id.lower()}"
    return f"{logical_id.lower()}-fake{('-' + attribute.lower()) if attribute else ''}"


PSEUDO_VALUES = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/swapdrop/0c9e5a30-8b0e-11ef-9d1c-0a1b2c3d4e5f",
    "AWS::StackName": "swapdrop",
    "AWS::URLSuffix": "amazonaws.com",
}


NO_VALUE = object()
"""What `!Ref AWS::NoValue` resolves to: dropped from the list or map that holds it."""


def resolve(template: dict[str, Any], node: Any, params: dict[str, Any]) -> Any:
    """Evaluate intrinsics with `params`, fake physical ids for resources and fixed pseudo values.

    `params` should hold every parameter (start from parameter_defaults); AWS::NoValue
    removes the property or list item that holds it, as CloudFormation does.
    """
    if isinstance(node, list):
        return [r for r in (resolve(template, item, params) for item in node) if r is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        return {key: r for key, value in node.items() if (r := resolve(template, value, params)) is not NO_VALUE}
    ((key, argument),) = node.items()
    if key == "Ref" and argument == "AWS::NoValue":
        return NO_VALUE
    if key == "Ref":
        if argument in params:
            return params[argument]
        if argument in PSEUDO_VALUES:
            return PSEUDO_VALUES[argument]
        return fake_physical_id(argument)
    if key == "Fn::GetAtt":
        return fake_physical_id(argument[0], argument[1])
    if key == "Fn::If":
        name, when_true, when_false = argument
        chosen = when_true if evaluate_condition(template, template["Conditions"][name], params) else when_false
        return resolve(template, chosen, params)
    if key == "Fn::Select":
        index, items = argument
        return resolve(template, items, params)[int(index)]
    if key == "Fn::Split":
        separator, text = argument
        return str(resolve(template, text, params)).split(separator)
    if key == "Fn::Join":
        separator, items = argument
        return separator.join(str(item) for item in resolve(template, items, params))
    if key == "Fn::Sub":
        text, local = (argument, {}) if isinstance(argument, str) else argument
        values = {name: resolve(template, value, params) for name, value in local.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return fake_physical_id(logical_id, attribute)
            return str(resolve(template, {"Ref": name}, params))

        return _SUB_VARIABLE.sub(substitute, text).replace("${!", "${")
    return {key: resolve(template, argument, params)}
