"""Least privilege, secrets, parameters and outputs."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from cfn_template import ROOT, as_list, canonical, grants, policy_statements, walk
from swapdrop.jobs import LIST_INDEXES

BUCKET = {"Fn::GetAtt": ["MediaBucket", "Arn"]}
TABLE = {"Fn::GetAtt": ["JobsTable", "Arn"]}
OPEN_JOBS = {"Fn::Sub": "${JobsTable.Arn}/index/OpenJobsByShard"}
LEGACY_OPEN_JOBS = {"Fn::Sub": "${JobsTable.Arn}/index/OpenJobs"}
API_KEY = {"Fn::If": ["CreateApiKeySecret", {"Ref": "ApiKeySecret"}, {"Ref": "ExistingApiKeySecretArn"}]}
CALLBACK_TOKEN = {"Ref": "CallbackTokenSecret"}
QUEUE = {"Fn::GetAtt": ["SubmitQueue", "Arn"]}
BUS = {"Fn::GetAtt": ["JobEventBus", "Arn"]}
CUSTOMER_KEY = {"Ref": "KmsKeyArn"}
IDEMPOTENCY = {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
WEBHOOK_QUEUE = {"Fn::GetAtt": ["WebhookQueue", "Arn"]}
WEBHOOK_DLQ = {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
WEBHOOK_KEY = {"Ref": "WebhookSecret"}


# A task token names no ARN: SendTaskSuccess/SendTaskFailure cannot be scoped to a resource.
TASK_TOKENS = (("states:SendTaskSuccess", "*"), ("states:SendTaskFailure", "*"))
UNSCOPABLE_ACTIONS = {action for action, _ in TASK_TOKENS}
"""The only actions granted on Resource "*"."""


def objects(prefix: str) -> dict[str, str]:
    return {"Fn::Sub": f"${{MediaBucket.Arn}}/{prefix}*"}


# Exactly what each function may do. A change to a function's policy must change this
# table too: that is the point.
EXPECTED_GRANTS: dict[str, list[tuple[str, Any]]] = {
    "SubmitFunction": [
        # faces, targets at their version (inbox/, uploads/, jobs/, any target.s3Key), a result in place
        ("s3:GetObject", objects("")),
        ("s3:GetObjectVersion", objects("")),
        ("s3:ListBucket", BUCKET),
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("secretsmanager:GetSecretValue", API_KEY),
        ("secretsmanager:GetSecretValue", CALLBACK_TOKEN),
        ("sqs:ChangeMessageVisibility", QUEUE),
        ("sqs:GetQueueUrl", QUEUE),
        ("sqs:SendMessage", QUEUE),  # a job waiting for upstream capacity sent again as {"jobId"}
        ("sqs:SendMessage", WEBHOOK_QUEUE),  # webhook messages handed over
        ("events:PutEvents", BUS),
        *TASK_TOKENS,
        ("s3:PutObject", objects("results/")),
        ("s3:PutObject", objects("jobs/")),
        ("kms:Decrypt", CUSTOMER_KEY),
        ("kms:GenerateDataKey", CUSTOMER_KEY),
    ],
    "CallbackFunction": [
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("s3:PutObject", objects("results/")),
        ("s3:GetObject", objects("results/")),
        ("secretsmanager:GetSecretValue", CALLBACK_TOKEN),
        ("sqs:SendMessage", WEBHOOK_QUEUE),  # webhook messages handed over
        ("events:PutEvents", BUS),
        *TASK_TOKENS,
        ("kms:Decrypt", CUSTOMER_KEY),
        ("kms:GenerateDataKey", CUSTOMER_KEY),
    ],
    "ReconcileFunction": [
        ("dynamodb:Query", OPEN_JOBS),
        ("dynamodb:Query", LEGACY_OPEN_JOBS),  # until the next release drops it (README "Migrating OpenJobs")
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("secretsmanager:GetSecretValue", API_KEY),
        ("s3:PutObject", objects("results/")),
        ("s3:GetObject", objects("results/")),
        ("sqs:SendMessage", WEBHOOK_QUEUE),  # webhook messages handed over
        ("events:PutEvents", BUS),
        *TASK_TOKENS,
        ("kms:Decrypt", CUSTOMER_KEY),
        ("kms:GenerateDataKey", CUSTOMER_KEY),
    ],
    "ApiFunction": [
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:BatchWriteItem", TABLE),  # batch POST /jobs (JobStore.create_many)
        *(("dynamodb:Query", {"Fn::Sub": f"${{JobsTable.Arn}}/index/{index}"}) for index in sorted(LIST_INDEXES)),
        ("dynamodb:GetItem", IDEMPOTENCY),
        ("dynamodb:PutItem", IDEMPOTENCY),
        ("dynamodb:UpdateItem", IDEMPOTENCY),
        ("dynamodb:DeleteItem", IDEMPOTENCY),
        # presigned POSTs (faces, job targets) are signed with the function's role
        ("s3:PutObject", objects("faces/")),
        ("s3:PutObject", objects("uploads/")),
        ("s3:DeleteObject", objects("faces/")),
        # HeadObject of faces and of any target.s3Key; presigned GETs of results
        ("s3:GetObject", objects("")),
        # result.url is presigned with the result's VersionId (MediaStore.presigned_get)
        ("s3:GetObjectVersion", objects("results/")),
        ("s3:ListBucket", BUCKET),
        ("sqs:SendMessage", QUEUE),
        ("sqs:SendMessage", WEBHOOK_QUEUE),  # webhook messages handed over
        ("events:PutEvents", BUS),
        *TASK_TOKENS,
        ("secretsmanager:GetSecretValue", API_KEY),
        ("secretsmanager:GetSecretValue", CALLBACK_TOKEN),
        ("kms:Decrypt", CUSTOMER_KEY),
        ("kms:GenerateDataKey", CUSTOMER_KEY),
    ],
    "RequestFunction": [
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:GetItem", IDEMPOTENCY),
        ("dynamodb:PutItem", IDEMPOTENCY),
        ("dynamodb:UpdateItem", IDEMPOTENCY),
        ("dynamodb:DeleteItem", IDEMPOTENCY),
        ("s3:GetObject", objects("")),  # HeadObject of a target.s3Key
        ("sqs:SendMessage", QUEUE),
        ("sqs:SendMessage", WEBHOOK_QUEUE),  # a REJECTED job's completed webhook
        ("events:PutEvents", BUS),  # Swap Request Rejected; a REJECTED job's Swap Job Finished
        *TASK_TOKENS,  # a REJECTED job's task token
        ("kms:Decrypt", CUSTOMER_KEY),
        ("kms:GenerateDataKey", CUSTOMER_KEY),
    ],
    "WebhookFunction": [
        ("dynamodb:GetItem", TABLE),
        ("dynamodb:PutItem", TABLE),
        ("secretsmanager:GetSecretValue", WEBHOOK_KEY),
        ("sqs:ChangeMessageVisibility", WEBHOOK_QUEUE),
        ("sqs:SendMessage", WEBHOOK_DLQ),
        ("kms:Decrypt", CUSTOMER_KEY),
        ("kms:GenerateDataKey", CUSTOMER_KEY),
    ],
}
# No code calls KMS: S3, SQS, Secrets Manager and DynamoDB use the customer key on the
# functions' behalf, with the functions' permissions.
IMPLICIT_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey"}
S3_WRITE = re.compile(r"^s3:(\*|Put.*|Delete.*|Restore.*|Replicate.*|AbortMultipartUpload|.*\*.*)$")


@pytest.mark.parametrize("name", sorted(EXPECTED_GRANTS))
def test_function_permissions_are_exactly_the_expected_ones(lambda_functions: dict[str, Any], name: str) -> None:
    granted = grants(lambda_functions[name])
    expected = {(action, canonical(resource)) for action, resource in EXPECTED_GRANTS[name]}
    assert granted == expected, (
        f"{name}\n  missing: {sorted(expected - granted)}\n  unexpected: {sorted(granted - expected)}"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED_GRANTS))
def test_only_inline_statements_no_wildcards(lambda_functions: dict[str, Any], name: str) -> None:
    statements, others = policy_statements(lambda_functions[name])
    assert not others, f"{name}: use explicit statements, not managed policies or policy templates: {others}"
    for statement in statements:
        assert statement.get("Effect") == "Allow", f"{name}: unexpected statement {statement}"
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{name}: wildcard action {action!r}"
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                unscoped = set(as_list(statement["Action"])) - UNSCOPABLE_ACTIONS
                assert not unscoped, f"{name}: Resource '*' on {sorted(unscoped)}"
        assert "NotAction" not in statement and "NotResource" not in statement


# Where each function may write (or sign uploads to). No function writes inbox/: its own writes
# must never start a job. uploads/ is the jobs API's presigned POST target, written by the caller.
S3_WRITE_PREFIXES = {
    "SubmitFunction": {"results/", "jobs/"},
    "CallbackFunction": {"results/"},
    "ReconcileFunction": {"results/"},
    "ApiFunction": {"faces/", "uploads/"},
    "WebhookFunction": set(),
    "RequestFunction": set(),
}


def test_s3_writes_only_where_each_function_should(lambda_functions: dict[str, Any]) -> None:
    assert set(lambda_functions) == set(S3_WRITE_PREFIXES), "say where a new function may write"
    for name, props in lambda_functions.items():
        allowed = [canonical(objects(prefix)) for prefix in S3_WRITE_PREFIXES[name]]
        statements, _ = policy_statements(props)
        for statement in statements:
            if not any(S3_WRITE.match(a) for a in as_list(statement["Action"])):
                continue
            for resource in as_list(statement["Resource"]):
                assert canonical(resource) in allowed, (
                    f"{name} may write to {resource}: only {sorted(S3_WRITE_PREFIXES[name])} are allowed"
                )


def test_only_the_api_deletes_and_only_faces(lambda_functions: dict[str, Any]) -> None:
    for name, props in lambda_functions.items():
        deletes = {r for a, r in grants(props) if a.startswith("s3:Delete")}
        assert deletes == ({canonical(objects("faces/"))} if name == "ApiFunction" else set()), (
            f"{name} may delete {sorted(deletes)}"
        )


def test_listing_is_limited_to_faces(lambda_functions: dict[str, Any]) -> None:
    for name, props in lambda_functions.items():
        for statement in policy_statements(props)[0]:
            if "s3:ListBucket" in as_list(statement["Action"]):
                prefixes = as_list(statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix", []))
                assert prefixes and all(p.startswith("faces/") for p in prefixes), (
                    f"{name} may list the whole bucket; condition s3:prefix to faces/"
                )


# --------------------------------------------------------------------------- code vs. policy

# boto3 method -> IAM action. A call the code makes that is missing here fails
# test_every_aws_call_in_the_code_is_known: add it, and grant it.
OPERATION_ACTIONS = {
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
    "scan": "dynamodb:Scan",
    "batch_get_item": "dynamodb:BatchGetItem",
    "batch_write_item": "dynamodb:BatchWriteItem",
    "batch_writer": "dynamodb:BatchWriteItem",  # boto3's Table.batch_writer() sends BatchWriteItem
    "transact_write_items": "dynamodb:PutItem",
    "transact_get_items": "dynamodb:GetItem",
    "get_object": "s3:GetObject",
    "head_object": "s3:GetObject",
    "download_fileobj": "s3:GetObject",
    "list_objects_v2": "s3:ListBucket",
    "list_objects": "s3:ListBucket",
    "put_object": "s3:PutObject",
    "upload_fileobj": "s3:PutObject",
    "upload_file": "s3:PutObject",
    "copy_object": "s3:PutObject",
    "delete_object": "s3:DeleteObject",
    "delete_objects": "s3:DeleteObject",  # DeleteObjects is authorized as s3:DeleteObject per key
    "change_message_visibility": "sqs:ChangeMessageVisibility",
    "get_queue_url": "sqs:GetQueueUrl",
    "send_message": "sqs:SendMessage",
    "send_message_batch": "sqs:SendMessage",  # SendMessageBatch is authorized as sqs:SendMessage
    "delete_message": "sqs:DeleteMessage",
    "receive_message": "sqs:ReceiveMessage",
    "put_events": "events:PutEvents",
    "send_task_success": "states:SendTaskSuccess",
    "send_task_failure": "states:SendTaskFailure",
    "get_secret_value": "secretsmanager:GetSecretValue",
    "get_parameter": "ssm:GetParameter",
    # A presigned request is made by its holder with the signer's permissions.
    "generate_presigned_post": "s3:PutObject",
    "generate_presigned_url": "s3:GetObject",
}
# Powertools utilities make the AWS calls for the code.
PROVIDER_ACTIONS: dict[str, tuple[str, ...]] = {
    "SecretsProvider": ("secretsmanager:GetSecretValue",),
    "get_secret": ("secretsmanager:GetSecretValue",),
    # idempotency: get, claim (conditional put), complete (update) and release (delete) records
    "DynamoDBPersistenceLayer": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
}
CODE_DIRS = ("layers/common/swapdrop", "functions")


def _aws_calls() -> dict[str, list[str]]:
    """IAM action -> where the code needs it, from the boto3 calls and providers the code uses.

    A module that reads objects and mentions VersionId reads object versions:
    GetObject with a VersionId needs s3:GetObjectVersion.
    """
    found: dict[str, list[str]] = {}
    for directory in CODE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            mentions_version_id = any(
                (isinstance(n, ast.Constant) and n.value == "VersionId")
                or (isinstance(n, ast.keyword) and n.arg == "VersionId")
                for n in ast.walk(tree)
            )
            for node in ast.walk(tree):
                name = None
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    name = node.func.attr
                elif isinstance(node, ast.Attribute | ast.Name):
                    name = node.attr if isinstance(node, ast.Attribute) else node.id
                    name = name if name in PROVIDER_ACTIONS else None
                operation = OPERATION_ACTIONS.get(name or "")
                actions = (operation,) if operation else PROVIDER_ACTIONS.get(name or "", ())
                for action in actions:
                    where = f"{Path(path).relative_to(ROOT)}:{node.lineno}"
                    found.setdefault(action, []).append(where)
                    if action == "s3:GetObject" and mentions_version_id:
                        found.setdefault("s3:GetObjectVersion", []).append(where)
    return found


def test_every_aws_call_in_the_code_is_granted_to_some_function(lambda_functions: dict[str, Any]) -> None:
    calls = _aws_calls()
    assert calls, f"found no AWS calls under {CODE_DIRS}: has the code moved?"
    granted = {action for props in lambda_functions.values() for action, _ in grants(props)}
    missing = {action: where for action, where in calls.items() if action not in granted}
    assert not missing, "the code makes AWS calls no function may make:\n" + "\n".join(
        f"  {action}: {', '.join(where)}" for action, where in sorted(missing.items())
    )


def test_every_granted_action_is_used_by_the_code(lambda_functions: dict[str, Any]) -> None:
    calls = _aws_calls()
    granted = {action for props in lambda_functions.values() for action, _ in grants(props)}
    unused = granted - set(calls) - IMPLICIT_ACTIONS
    assert not unused, f"granted but never called by the code (least privilege): {sorted(unused)}"


# --------------------------------------------------------------------------- secrets


def test_callback_token_secret_is_generated(resources: dict[str, Any]) -> None:
    secret = resources["CallbackTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert "Condition" not in secret
    generate = secret["Properties"].get("GenerateSecretString", {})
    assert generate.get("PasswordLength", 32) >= 64, "the HMAC key should be at least 64 characters"
    assert generate.get("ExcludePunctuation") is True
    assert "SecretString" not in secret["Properties"]


def test_api_key_secret_is_created_only_without_an_existing_one(template: dict[str, Any]) -> None:
    assert template["Conditions"]["CreateApiKeySecret"] == {"Fn::Equals": [{"Ref": "ExistingApiKeySecretArn"}, ""]}
    secret = template["Resources"]["ApiKeySecret"]
    assert secret["Condition"] == "CreateApiKeySecret"
    # A marker, not a key: /health (and doctor) can tell the secret was never set. A generated
    # random value would look like a real key.
    from swapdrop.wiring import API_KEY_PLACEHOLDER

    assert secret["Properties"]["SecretString"] == API_KEY_PLACEHOLDER
    assert "GenerateSecretString" not in secret["Properties"]
    assert template["Parameters"]["ExistingApiKeySecretArn"]["Default"] == ""


def test_no_parameter_carries_a_secret_value(parameters: dict[str, Any]) -> None:
    for name, spec in parameters.items():
        if re.search(r"key|secret|token|password", name, re.IGNORECASE):
            assert name.endswith("Arn") or spec.get("NoEcho") is True, (
                f"parameter {name} looks like it holds a secret: take a secret ARN instead"
            )
            if name.endswith("Arn"):
                pattern = spec.get("AllowedPattern", "")
                assert pattern.startswith("^(|arn:aws") and pattern.endswith(")$"), (
                    f"{name} should accept only an ARN (or nothing): pattern {pattern!r}"
                )
                service = "kms" if name == "KmsKeyArn" else "secretsmanager"
                assert f":{service}:" in pattern, f"{name} should only accept a {service} ARN"
                assert not re.fullmatch(pattern, "sk-0123456789abcdef0123456789abcdef"), f"{name} accepts a raw key"


def test_parameter_defaults_satisfy_their_constraints(parameters: dict[str, Any]) -> None:
    for name, spec in parameters.items():
        assert "Default" in spec, f"parameter {name} has no default: sam deploy would have to ask"
        default = spec["Default"]
        if "AllowedValues" in spec:
            assert default in spec["AllowedValues"], f"{name}: default {default!r} not allowed"
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], str(default)), f"{name}: default {default!r} fails pattern"
        if spec["Type"] == "Number":
            assert spec.get("MinValue", default) <= default <= spec.get("MaxValue", default), f"{name}: {default}"


def test_upstream_base_url_pattern(parameters: dict[str, Any]) -> None:
    pattern = parameters["UpstreamBaseUrl"]["AllowedPattern"]
    for good in ("https://gpt.mnxcc.com", "https://relay.example.com/api", "http://10.0.0.5:8080"):
        assert re.fullmatch(pattern, good), good
    for bad in ("gpt.mnxcc.com", "https://gpt.mnxcc.com/", "ftp://x", "https://a b"):
        assert not re.fullmatch(pattern, bad), bad


def test_no_literal_secret_values_anywhere(template: dict[str, Any]) -> None:
    for path, value in walk(template):
        if isinstance(value, str):
            assert not re.search(r"\bsk-[A-Za-z0-9]{16,}", value), f"{path}: looks like an API key"


# --------------------------------------------------------------------------- outputs


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    expected = {
        "BucketName": {"Ref": "MediaBucket"},
        "JobsTableName": {"Ref": "JobsTable"},
        "SubmitQueueUrl": {"Ref": "SubmitQueue"},
        "SubmitDeadLetterQueueUrl": {"Ref": "SubmitDeadLetterQueue"},
        "JobEventBusName": {"Ref": "JobEventBus"},
        "ApiKeySecretArn": API_KEY,
        "CallbackTokenSecretArn": CALLBACK_TOKEN,
        "ClientPolicyArn": {"Ref": "ApiClientPolicy"},
        "IdempotencyTableName": {"Ref": "IdempotencyTable"},
    }
    for name, value in expected.items():
        assert name in outputs, f"output {name} is missing"
        assert outputs[name]["Value"] == value, f"output {name} is {outputs[name]['Value']!r}, want {value!r}"
    assert "CallbackApiUrl" in outputs
    assert "${CallbackApi}.execute-api." in outputs["CallbackApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${CallbackApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
    }
    assert outputs["JwtApiUrl"]["Condition"] == "HasJwt"
    assert outputs["JwtApiUrl"]["Value"] == {
        "Fn::Sub": "https://${JwtApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
    }


def test_event_bus(resources: dict[str, Any]) -> None:
    bus = resources["JobEventBus"]
    assert bus["Type"] == "AWS::Events::EventBus"
    assert bus["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-jobs"}


def test_log_groups_have_retention(resources: dict[str, Any], lambda_functions: dict[str, Any]) -> None:
    for name, props in lambda_functions.items():
        group = props.get("LoggingConfig", {}).get("LogGroup")
        assert isinstance(group, dict) and group.get("Ref") in resources, f"{name} logs to no stack log group"
        retention = resources[group["Ref"]]["Properties"].get("RetentionInDays")
        assert retention == {"Ref": "LogRetentionDays"}, f"{name}'s log group keeps logs forever"
    access = resources["CallbackApi"]["Properties"]["AccessLogSettings"]["DestinationArn"]
    group = resources[access["Fn::GetAtt"][0]]
    assert group["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"}


def test_result_writers_can_read_the_result_in_place(lambda_functions: dict[str, Any]) -> None:
    """media_store.write_result HEADs a result already at the key (a re-upload's) before replacing
    it; without s3:GetObject on results/* S3 answers 403 and no re-upload ever gets its result.
    Every function that can finish a job writes results: the submitter too, when it adopts a
    lost submit's task that has already succeeded."""
    writers = []
    for name, props in lambda_functions.items():
        statements = policy_statements(props)[0]
        writes = any(
            "s3:PutObject" in as_list(st["Action"]) and "results/*" in str(st["Resource"]) for st in statements
        )
        if not writes:
            continue
        writers.append(name)
        readable = {canonical(objects("results/")), canonical(objects(""))}
        reads = any(
            "s3:GetObject" in as_list(st["Action"]) and readable & {canonical(r) for r in as_list(st["Resource"])}
            for st in statements
        )
        assert reads, f"{name} writes results/* but may not read what is there (HeadObject needs s3:GetObject)"
    assert sorted(writers) == ["CallbackFunction", "ReconcileFunction", "SubmitFunction"]
