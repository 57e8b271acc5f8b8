"""The local stack as a CloudFormation stack on moto, so clients find it as they find a deployed one.

`swapdrop` reads a stack's Outputs from describe_stacks; registering the local stack under its name
with the template's Outputs resolved to local values (the local HTTP APIs, moto's queues, the local
function names, …) gives the CLI one code path for both targets.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from swapdrop_local.template import LOCAL_ACCOUNT, Resolver

log = logging.getLogger("swapdrop.local")

LOCAL_CONDITIONS = {"HasJwt": True}
"""Conditions that hold locally whatever the parameters say: the local stack always runs its JWT API."""

_API_HOSTS = {"CallbackApi": "local-http-api", "JwtApi": "local-jwt-api"}
"""Stand-in API ids: the Outputs' execute-api URLs built on them are replaced by the local APIs' URLs."""


def stack_outputs(resolver: Resolver, api_urls: dict[str, str]) -> list[dict[str, str]]:
    """The template's Outputs (whose Condition holds locally) resolved with local values.

    `api_urls`: logical id of each API (CallbackApi, JwtApi) → its local base URL."""
    local = replace(resolver, refs={**resolver.refs}, attributes={**resolver.attributes})
    for logical, spec in resolver.template.get("Resources", {}).items():
        if logical not in local.refs:
            local.refs[logical] = _physical_id(resolver, logical, spec)
    suffix = resolver.pseudo()["AWS::URLSuffix"]
    prefixes = {}
    for logical, host in _API_HOSTS.items():
        local.refs[logical] = host
        if logical in api_urls:
            prefixes[f"https://{host}.execute-api.{resolver.region}.{suffix}"] = api_urls[logical].rstrip("/")
    outputs = []
    for key, spec in resolver.template.get("Outputs", {}).items():
        condition = spec.get("Condition")
        if condition and not (LOCAL_CONDITIONS.get(condition) or resolver.condition(condition)):
            continue
        try:
            value = str(local.resolve(spec["Value"]))
        except KeyError as missing:  # names something the local stack does not have: say so, start anyway
            log.warning("stack output %s has no local value (%s is not created locally)", key, missing)
            continue
        for prefix, url in prefixes.items():
            value = value.replace(prefix, url)
        output = {"OutputKey": key, "OutputValue": value}
        if "Description" in spec:
            output["Description"] = str(local.resolve(spec["Description"]))
        outputs.append(output)
    return outputs


def register_stack(
    cloudformation: Any, stack_name: str, outputs: list[dict[str, str]], parameters: dict[str, Any]
) -> str:
    """Create (or recreate) `stack_name` on moto with these Outputs and Parameters; its StackId.

    Its one resource is an SSM parameter naming the stack: moto needs a resource and handles this
    type without side effects beyond the parameter itself."""
    body = {
        "Description": "swapdrop local stack (registered by swapdrop local: resources live on this moto server)",
        "Parameters": {name: {"Type": "String"} for name in parameters},
        "Resources": {
            "LocalStack": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{stack_name}/local-stack", "Type": "String", "Value": stack_name},
            }
        },
        "Outputs": {
            output["OutputKey"]: {
                "Value": output["OutputValue"],
                **({"Description": output["Description"]} if "Description" in output else {}),
            }
            for output in outputs
        },
    }
    request = {
        "StackName": stack_name,
        "TemplateBody": json.dumps(body),
        "Parameters": [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()],
    }
    try:
        return cloudformation.create_stack(**request)["StackId"]
    except cloudformation.exceptions.AlreadyExistsException:  # a stack of the same name earlier in this process
        cloudformation.delete_stack(StackName=stack_name)
        return cloudformation.create_stack(**request)["StackId"]


def _physical_id(resolver: Resolver, logical: str, spec: dict[str, Any]) -> str:
    """What Ref answers for a resource the local stack has not created itself (CloudFormation's naming)."""
    kind = spec.get("Type", "")
    name = f"{resolver.stack_name}-{logical}"
    properties = spec.get("Properties") or {}
    if kind == "AWS::IAM::ManagedPolicy":
        return f"arn:aws:iam::{LOCAL_ACCOUNT}:policy/{name}"
    if kind == "AWS::SNS::Topic":
        topic = properties.get("TopicName") or name
        return f"arn:aws:sns:{resolver.region}:{LOCAL_ACCOUNT}:{resolver.resolve(topic)}"
    for name_property in ("DashboardName", "AlarmName", "Name"):
        if isinstance(properties.get(name_property), str | dict):
            try:
                return str(resolver.resolve(properties[name_property]))
            except KeyError:  # it names something not created locally
                break
    return name
