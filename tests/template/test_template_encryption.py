"""The optional customer key (KmsKeyArn), optional S3 access logs, and reserved concurrency.

Each check resolves the template twice, as CloudFormation would: with the defaults (AWS-managed
encryption, no access logs) and with the parameter set. A new queue, secret or log group is
covered by type, so it cannot be added without the customer key.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from cfn_template import (
    FUNCTION_TYPE,
    as_list,
    conditional_statements,
    functions,
    parameter_defaults,
    policy_statements,
    resolve,
)
from swapdrop_local.template import Resolver

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LOG_BUCKET = "example-access-logs"
# Where each resource type names its KMS key.
KEY_PROPERTY = {
    "AWS::SQS::Queue": "KmsMasterKeyId",
    "AWS::SecretsManager::Secret": "KmsKeyId",
    "AWS::Logs::LogGroup": "KmsKeyId",
}
# They put results/ objects under SSE-KMS; ApiFunction signs uploads and sends to the encrypted queue.
WRITERS = {
    "CallbackFunction",
    "ReconcileFunction",
    "SubmitFunction",
    "ApiFunction",
    "WebhookFunction",
    "RequestFunction",
}


def resolved(template: dict[str, Any], **overrides: Any) -> dict[str, dict[str, Any]]:
    """Every resource's Properties (functions with Globals merged), resolved with these parameters."""
    params = parameter_defaults(template) | overrides
    merged = functions(template)
    return {
        name: resolve(template, merged.get(name, resource.get("Properties", {})), params)
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or resolve(template, {"Fn::If": [resource["Condition"], True, False]}, params)
    }


def of_type(template: dict[str, Any], props: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = {n: p for n, p in props.items() if template["Resources"][n]["Type"] == resource_type}
    assert found, f"no {resource_type} in the template"
    return found


def kms_statements(props: dict[str, Any]) -> list[dict[str, Any]]:
    """A function's statements that grant any kms: action."""
    return [s for s in policy_statements(props)[0] if any(str(a).startswith("kms:") for a in as_list(s["Action"]))]


# --------------------------------------------------------------------------- customer key


def test_with_a_customer_key_every_store_uses_it(template: dict[str, Any]) -> None:
    props = resolved(template, KmsKeyArn=KEY)
    bucket = props["MediaBucket"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}, "BucketKeyEnabled": True}
    ], f"bucket encryption with KmsKeyArn set: {bucket}"
    table = props["JobsTable"]["SSESpecification"]
    assert table == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY}, f"table SSE: {table}"
    for resource_type, key_property in KEY_PROPERTY.items():
        for name, resource in of_type(template, props, resource_type).items():
            assert resource.get(key_property) == KEY, f"{name}.{key_property} is {resource.get(key_property)!r}"
            assert "SqsManagedSseEnabled" not in resource, f"{name}: SSE-SQS and a KMS key are exclusive"
    for name, function in of_type(template, props, FUNCTION_TYPE).items():
        assert function.get("KmsKeyArn") == KEY, f"{name}'s environment is not under the customer key"


def test_without_a_customer_key_nothing_names_one(template: dict[str, Any]) -> None:
    props = resolved(template)
    assert props["MediaBucket"]["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["JobsTable"]["SSESpecification"] == {"SSEEnabled": True}
    for resource_type, key_property in KEY_PROPERTY.items():
        for name, resource in of_type(template, props, resource_type).items():
            assert key_property not in resource, f"{name} names a key without KmsKeyArn: {resource[key_property]!r}"
    for name, function in of_type(template, props, FUNCTION_TYPE).items():
        assert "KmsKeyArn" not in function, name
        assert not kms_statements(function), f"{name} gets KMS permissions without a customer key"


def test_functions_get_kms_only_on_that_key_and_only_what_they_need(template: dict[str, Any]) -> None:
    for name, function in of_type(template, resolved(template, KmsKeyArn=KEY), FUNCTION_TYPE).items():
        kms = kms_statements(function)
        assert kms, f"{name} cannot decrypt what the customer key encrypts (secrets, queue, table, objects)"
        for statement in kms:
            assert as_list(statement["Resource"]) == [KEY], f"{name}: KMS on {statement['Resource']}, want only {KEY}"
            assert statement["Effect"] == "Allow" and "Condition" not in statement
        actions = {a for s in kms for a in as_list(s["Action"])}
        want = {"kms:Decrypt", "kms:GenerateDataKey"} if name in WRITERS else {"kms:Decrypt"}
        assert actions == want, f"{name} KMS actions {sorted(actions)}, want {sorted(want)}"


def test_kms_grants_exist_only_under_the_customer_key_condition(lambda_functions: dict[str, Any]) -> None:
    for name, props in lambda_functions.items():
        conditional = conditional_statements(props)
        for statement in kms_statements(props):
            assert ("UseCustomerKey", statement) in conditional, (
                f"{name}: {statement} must sit in !If [UseCustomerKey, ..., !Ref AWS::NoValue]"
            )
            assert statement["Resource"] == {"Ref": "KmsKeyArn"}


def test_customer_key_parameter(template: dict[str, Any], parameters: dict[str, Any]) -> None:
    spec = parameters["KmsKeyArn"]
    assert spec["Default"] == ""
    assert template["Conditions"]["UseCustomerKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}]}
    assert re.fullmatch(spec["AllowedPattern"], KEY)
    # Log groups and IAM resources need the key ARN: an alias or a bare id would fail at deploy time.
    for bad in ("alias/swapdrop", "1234abcd-12ab-34cd-56ef-1234567890ab", "arn:aws:kms:us-east-1:123456789012:alias/x"):
        assert not re.fullmatch(spec["AllowedPattern"], bad), bad


# --------------------------------------------------------------------------- access logs


def test_access_logging_goes_to_the_named_bucket_only_when_set(template: dict[str, Any]) -> None:
    assert "LoggingConfiguration" not in resolved(template)["MediaBucket"]
    logging = resolved(template, AccessLogBucketName=LOG_BUCKET)["MediaBucket"]["LoggingConfiguration"]
    assert logging == {"DestinationBucketName": LOG_BUCKET, "LogFilePrefix": "swapdrop/"}, logging


# --------------------------------------------------------------------------- reserved concurrency


def test_every_function_reserves_concurrency(lambda_functions: dict[str, Any]) -> None:
    missing = [n for n, p in lambda_functions.items() if "ReservedConcurrentExecutions" not in p]
    assert not missing, f"{missing}: a flood could run them without limit (cost) or starve the account"


def test_reconciler_runs_never_overlap(lambda_functions: dict[str, Any]) -> None:
    assert lambda_functions["ReconcileFunction"]["ReservedConcurrentExecutions"] == 1


def test_callback_concurrency_is_a_parameter(lambda_functions: dict[str, Any], parameters: dict) -> None:
    assert lambda_functions["CallbackFunction"]["ReservedConcurrentExecutions"] == {"Ref": "CallbackConcurrency"}
    spec = parameters["CallbackConcurrency"]
    assert spec["Type"] == "Number" and spec["Default"] == 10 and spec["MinValue"] >= 1


@pytest.mark.parametrize("upstream", [None, 2, 37, 1000])
def test_submit_reserves_at_least_the_sqs_maximum_concurrency(template: dict[str, Any], upstream: int | None) -> None:
    """Reserved below MaximumConcurrency makes SQS invoke into throttles (messages bounce to the DLQ)."""
    overrides = {} if upstream is None else {"UpstreamConcurrency": upstream}
    submit = resolved(template, **overrides)["SubmitFunction"]
    maximum = submit["Events"]["Uploads"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    assert int(submit["ReservedConcurrentExecutions"]) >= int(maximum), (
        f"ReservedConcurrentExecutions {submit['ReservedConcurrentExecutions']} < MaximumConcurrency {maximum}"
    )


def test_local_stack_can_read_the_callback_concurrency(template: dict[str, Any]) -> None:
    """The local runtime sizes its callback workers from this, through the local Resolver."""
    resolver = Resolver(template, region="us-east-1")
    value = template["Resources"]["CallbackFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert resolver.resolve(value) == 10
    resolver.parameters["CallbackConcurrency"] = 3
    assert resolver.resolve(value) == 3
