"""Every !Ref, !Sub ${X}, !GetAtt and condition names something that exists, and nothing is circular.

cfn-lint checks none of this inside SAM function properties (Globals, Environment,
Policies, Events): a misspelt name there only fails at deploy time.
"""

from __future__ import annotations

from typing import Any

from cfn_template import FUNCTION_TYPE, PSEUDO_PARAMETERS, as_list, condition_names_used, references, walk


def test_every_reference_names_a_parameter_resource_or_pseudo_parameter(template: dict[str, Any]) -> None:
    parameters, resources = set(template.get("Parameters", {})), set(template["Resources"])
    problems = []
    for section in ("Globals", "Conditions", "Resources", "Outputs"):
        for kind, target, path in references(template.get(section, {})):
            where = ".".join(str(p) for p in (section, *path))
            if kind == "GetAtt":
                if target not in resources:
                    problems.append(f"{where}: !GetAtt {target} is not a resource")
            elif target not in parameters | resources | PSEUDO_PARAMETERS:
                problems.append(f"{where}: {kind} {target} is not a parameter, resource or pseudo parameter")
    assert not problems, "\n".join(problems)


def test_conditions_and_depends_on_exist(template: dict[str, Any]) -> None:
    conditions, resources = set(template.get("Conditions", {})), template["Resources"]
    problems = [
        f"{'.'.join(map(str, path))}: condition {name!r} is not defined"
        for name, path in condition_names_used({"Conditions": template.get("Conditions", {}),
                                                "Resources": resources,
                                                "Outputs": template.get("Outputs", {}),
                                                "Globals": template.get("Globals", {})})
        if name not in conditions
    ]  # fmt: skip
    for name, resource in resources.items():
        if "Condition" in resource and resource["Condition"] not in conditions:
            problems.append(f"{name}: Condition {resource['Condition']!r} is not defined")
        for dependency in as_list(resource.get("DependsOn", [])):
            if dependency not in resources:
                problems.append(f"{name}: DependsOn {dependency!r} is not a resource")
    assert not problems, "\n".join(problems)


def _guarded(path: tuple[Any, ...], node_at: Any, condition: str) -> bool:
    """Whether the node at `path` sits in the true branch of an Fn::If on `condition`."""
    node = node_at
    for index, step in enumerate(path):
        if isinstance(node, dict) and step == "Fn::If":
            branch = path[index + 1] if index + 1 < len(path) else None
            if node["Fn::If"][0] == condition and branch == 1:
                return True
        node = node[step]
    return False


def _implied(template: dict[str, Any], condition: str | None) -> set[str]:
    """The condition and every condition it implies (an Fn::And over !Condition X implies X)."""
    if condition is None:
        return set()
    found = {condition}
    expression = template.get("Conditions", {}).get(condition)
    if isinstance(expression, dict) and list(expression) == ["Fn::And"]:
        for term in expression["Fn::And"]:
            if isinstance(term, dict) and list(term) == ["Condition"]:
                found |= _implied(template, term["Condition"])
    return found


def test_conditional_resources_are_only_used_under_their_condition(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    conditional = {name: r["Condition"] for name, r in resources.items() if "Condition" in r}
    problems = []
    sections = {"Globals": template.get("Globals", {}), "Resources": resources, "Outputs": template.get("Outputs", {})}
    for kind, target, path in references(sections):
        if target not in conditional:
            continue
        owner_condition = resources.get(path[1], {}).get("Condition") if path[0] == "Resources" else None
        output_condition = template["Outputs"][path[1]].get("Condition") if path[0] == "Outputs" else None
        condition = conditional[target]
        owners = _implied(template, owner_condition) | _implied(template, output_condition)
        if condition in owners or _guarded(path, sections, condition):
            continue
        problems.append(
            f"{'.'.join(map(str, path))}: {kind} {target} exists only when {condition}; "
            f"wrap it in !If [{condition}, ...]"
        )
    assert not problems, "\n".join(problems)


def _dependency_graph(template: dict[str, Any], lambda_functions: dict[str, Any]) -> dict[str, set[str]]:
    """Resource -> resources it needs, including the edges SAM adds when it expands events."""
    resources = template["Resources"]
    graph: dict[str, set[str]] = {}
    for name, resource in resources.items():
        body = resource.get("Properties", {})
        if resource["Type"] == FUNCTION_TYPE:  # events become resources of their own (below)
            body = {k: v for k, v in lambda_functions[name].items() if k != "Events"}
        needs = {target for _, target, _ in references(body) if target in resources}
        needs |= set(as_list(resource.get("DependsOn", [])))
        graph[name] = needs - {name}
    for name, props in lambda_functions.items():
        for event_name, event in props.get("Events", {}).items():
            # The event source mapping, rule or permission SAM makes needs the function and the source.
            graph[f"{name}{event_name}"] = {name} | {t for _, t, _ in references(event) if t in resources}
            # SAM writes an Api/HttpApi event into the API's OpenAPI body: the API needs the function.
            if event.get("Type") in ("Api", "HttpApi"):
                api = event.get("Properties", {}).get("ApiId") or event.get("Properties", {}).get("RestApiId")
                if isinstance(api, dict) and api.get("Ref") in resources:
                    graph[api["Ref"]].add(name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for following in sorted(graph.get(node, ())):
            if state.get(following) == 1:
                found.append([*stack[stack.index(following) :], following])
            elif following not in state:
                visit(following)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_circular_dependencies(template: dict[str, Any], lambda_functions: dict[str, Any]) -> None:
    cycles = _cycles(_dependency_graph(template, lambda_functions))
    assert not cycles, "circular dependencies (CloudFormation refuses the stack):\n" + "\n".join(
        " -> ".join(cycle) for cycle in cycles
    )


def test_cycle_detector_sees_an_http_api_function_referring_to_its_api(
    template: dict[str, Any], lambda_functions: dict[str, Any]
) -> None:
    """The detector itself: CallbackFunction naming CallbackApi is the classic SAM cycle."""
    broken = {name: dict(props) for name, props in lambda_functions.items()}
    broken["CallbackFunction"]["Environment"] = {"Variables": {"X": {"Fn::Sub": "https://${CallbackApi}.x"}}}
    cycles = _cycles(_dependency_graph(template, broken))
    assert ["CallbackApi", "CallbackFunction", "CallbackApi"] in cycles


def test_no_literal_account_ids_or_regions(template: dict[str, Any]) -> None:
    """ARNs are built from pseudo parameters, so the stack deploys in any account and region."""
    offenders = [
        ".".join(map(str, path))
        for path, value in walk(template["Resources"])
        if isinstance(value, str) and ("arn:aws:" in value or "123456789012" in value or "us-east-1" in value)
    ]
    assert not offenders, f"hard-coded partition/account/region at {offenders}"
