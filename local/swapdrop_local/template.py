"""Read template.yaml and resolve what the local stack needs from it.

The local stack creates its resources and function environments from the template
itself, so the two cannot drift. Intrinsics are resolved against local physical ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
LOCAL_ACCOUNT = "123456789012"
NO_VALUE = object()


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that knows CloudFormation's short tags and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (YAML keeps only the last one)", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct(tag: str):
    name = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


INTRINSIC_TAGS = (
    "Ref", "Condition", "Sub", "GetAtt", "If", "Equals", "Not", "And", "Or", "Select", "Split",
    "Join", "FindInMap", "Base64", "Cidr", "GetAZs", "ImportValue", "Length", "ToJsonString", "Transform",
)  # fmt: skip
for _tag in INTRINSIC_TAGS:
    CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader


@dataclass
class Resolver:
    """Resolves intrinsics given parameter values and local physical ids/attributes."""

    template: dict[str, Any]
    region: str
    stack_name: str = "swapdrop-local"
    parameters: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, spec in self.template.get("Parameters", {}).items():
            self.parameters.setdefault(name, spec.get("Default", ""))

    def pseudo(self) -> dict[str, str]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{LOCAL_ACCOUNT}:stack/{self.stack_name}/local",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::Partition": "aws",
        }

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: r for k, v in value.items() if (r := self.resolve(v)) is not NO_VALUE}
        ((key, arg),) = value.items()
        match key:
            case "Ref":
                return self._ref(arg)
            case "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attributes[(logical, attribute)]
            case "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return self._sub(text, variables)
            case "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            case "Fn::Equals":
                left, right = self.resolve(arg)
                return str(left) == str(right)
            case "Fn::Not":
                return not self.resolve(arg[0])
            case "Fn::And":
                return all(self.resolve(arg))
            case "Fn::Or":
                return any(self.resolve(arg))
            case "Condition":
                return self.condition(arg)
            case "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            case "Fn::Split":
                separator, text = self.resolve(arg)
                return text.split(separator)
            case "Fn::Join":
                separator, items = self.resolve(arg)
                return separator.join(str(i) for i in items)
        return {key: self.resolve(arg)}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo():
            return self.pseudo()[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.refs[name]

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            expression, _, rest = after.partition("}")
            out.append(before)
            if expression.startswith("!"):
                out.append("${" + expression[1:] + "}")
            elif expression in variables:
                out.append(str(variables[expression]))
            elif "." in expression and expression.split(".", 1)[0] not in ("AWS",) and "::" not in expression:
                logical, attribute = expression.split(".", 1)
                out.append(str(self.attributes[(logical, attribute)]))
            else:
                out.append(str(self._ref(expression)))
        out.append(rest)
        return "".join(out)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in template["Resources"].items() if spec["Type"] == resource_type}


def function_environment(template: dict[str, Any], resolver: Resolver, function: str) -> dict[str, str]:
    """The environment the template gives `function`: Globals merged with its own."""
    merged = dict(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    spec = template["Resources"][function]["Properties"]
    merged.update(spec.get("Environment", {}).get("Variables", {}))
    return {name: str(resolver.resolve(value)) for name, value in merged.items()}
