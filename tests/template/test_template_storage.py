"""Bucket, queues and table: encryption, TLS, the one trigger (inbox/ only), the job index."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
from cfn_template import FUNCTION_TYPE, PSEUDO_VALUES, as_list, parameter_defaults, resolve
from swapdrop.jobs import (
    LEGACY_OPEN_KEY,
    LIST_INDEXES,
    LIST_SORT_KEY,
    OPEN_JOB_ATTRIBUTES,
    OPEN_KEY,
    Job,
    JobStatus,
    OpenJob,
)

STACK_UUID = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
TLS_ONLY_CONDITION = {"Bool": {"aws:SecureTransport": "false"}}


def deny_insecure_transport(statements: list[dict[str, Any]], resources_needed: list[Any]) -> bool:
    for statement in statements:
        if (
            statement.get("Effect") == "Deny"
            and statement.get("Principal") in ("*", {"AWS": "*"})
            and statement.get("Condition") == TLS_ONLY_CONDITION
            and all(r in as_list(statement.get("Resource")) for r in resources_needed)
        ):
            return True
    return False


# --------------------------------------------------------------------------- bucket


def bucket(resources: dict[str, Any]) -> dict[str, Any]:
    return resources["MediaBucket"]["Properties"]


def test_bucket_is_encrypted_private_and_owner_enforced(template: dict[str, Any], resources: dict) -> None:
    props = bucket(resources)
    rules = resolve(template, props["BucketEncryption"], parameter_defaults(template))
    rules = rules["ServerSideEncryptionConfiguration"]
    assert rules and rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    block = props["PublicAccessBlockConfiguration"]
    for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        assert block.get(setting) is True, f"PublicAccessBlockConfiguration.{setting} must be true"
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_bucket_aborts_incomplete_multipart_uploads(resources: dict[str, Any]) -> None:
    rules = bucket(resources)["LifecycleConfiguration"]["Rules"]
    assert any(r.get("Status") == "Enabled" and "AbortIncompleteMultipartUpload" in r for r in rules)


def test_bucket_accepts_only_tls(resources: dict[str, Any]) -> None:
    policies = [r for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"]
    assert len(policies) == 1, "expected one bucket policy"
    props = policies[0]["Properties"]
    assert props["Bucket"] == {"Ref": "MediaBucket"}
    statements = props["PolicyDocument"]["Statement"]
    assert deny_insecure_transport(
        statements, [{"Fn::GetAtt": ["MediaBucket", "Arn"]}, {"Fn::Sub": "${MediaBucket.Arn}/*"}]
    ), "the bucket policy must deny every request with aws:SecureTransport false, on the bucket and its objects"


def test_user_data_survives_stack_deletion(resources: dict[str, Any]) -> None:
    for name in ("MediaBucket", "JobsTable"):
        assert resources[name].get("DeletionPolicy") == "Retain", f"{name} needs DeletionPolicy Retain"
        assert resources[name].get("UpdateReplacePolicy") == "Retain", f"{name} needs UpdateReplacePolicy Retain"


def test_bucket_name_is_deterministic_lowercase_and_short(template: dict[str, Any], resources: dict) -> None:
    name = bucket(resources)["BucketName"]
    assert name == {"Fn::Sub": ["swapdrop-${Id}", {"Id": STACK_UUID}]}, f"BucketName is {name!r}"
    physical = resolve(template, name, {})
    uuid = PSEUDO_VALUES["AWS::StackId"].rsplit("/", 1)[1]
    assert physical == f"swapdrop-{uuid}", physical
    assert len(physical) <= 63 and physical == physical.lower()


def key_matches(rules: list[dict[str, str]], key: str) -> bool:
    for rule in rules:
        name, value = rule["Name"].lower(), rule["Value"]
        if name == "prefix" and not key.startswith(value):
            return False
        if name == "suffix" and not key.endswith(value):
            return False
    return True


def test_bucket_notifies_the_queue_for_inbox_and_uploads_only(resources: dict[str, Any]) -> None:
    notification = bucket(resources)["NotificationConfiguration"]
    assert set(notification) == {"QueueConfigurations"}, (
        f"the bucket must notify only the submit queue, found {sorted(notification)} "
        "(no Lambda, SNS or EventBridge notifications)"
    )
    configs = notification["QueueConfigurations"]
    prefixes = []
    for config in configs:
        assert config["Event"] == "s3:ObjectCreated:*"
        assert config["Queue"] == {"Fn::GetAtt": ["SubmitQueue", "Arn"]}
        rules = config["Filter"]["S3Key"]["Rules"]
        assert len(rules) == 1 and rules[0]["Name"] == "prefix", f"filter rules {rules}, want one prefix rule"
        prefixes.append(rules[0]["Value"])
    assert sorted(prefixes) == ["inbox/", "uploads/"], f"notified prefixes {prefixes}"
    starts_a_job = [[c["Filter"]["S3Key"]["Rules"]] for c in configs]

    def notifies(key: str) -> bool:
        return any(key_matches(rules, key) for (rules,) in starts_a_job)

    for key in ("results/alice/a.png", "faces/alice.jpg", "results/inbox/x.jpg", "Inbox/alice/a.jpg",
                "jobs/0123456789abcdef0123456789abcdef/target", "results/uploads/x.jpg"):  # fmt: skip
        assert not notifies(key), f"{key} would start a job"
    assert notifies("inbox/alice/summer trip/café + friends.jpg")
    assert notifies("uploads/0123456789abcdef0123456789abcdef/target.png")


def test_notified_prefixes_are_the_codes(resources: dict[str, Any]) -> None:
    """The submitter reads inbox/ and uploads/ keys (swapdrop.layout); the fetched URL targets under
    jobs/ are written by the submitter itself and must not come back to it."""
    from swapdrop import layout

    configs = bucket(resources)["NotificationConfiguration"]["QueueConfigurations"]
    prefixes = {c["Filter"]["S3Key"]["Rules"][0]["Value"] for c in configs}
    assert prefixes == {layout.INBOX_PREFIX, layout.UPLOADS_PREFIX}
    assert layout.upload_key("0" * 32, "image/png").startswith(layout.UPLOADS_PREFIX)
    assert not any(layout.input_key("0" * 32).startswith(p) for p in prefixes)


def test_bucket_waits_for_the_queue_policy(resources: dict[str, Any]) -> None:
    """S3 checks it may send to the queue when the notification is set: the policy must exist first."""
    assert "SubmitQueuePolicy" in as_list(resources["MediaBucket"].get("DependsOn", [])), (
        "MediaBucket must DependsOn SubmitQueuePolicy, or S3 may refuse the notification configuration"
    )


def test_nothing_else_listens_to_the_bucket(resources: dict[str, Any], lambda_functions: dict) -> None:
    for name, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Events::Rule":
            # S3 sends EventBridge notifications to the default bus only, never as "Swap Requested".
            assert props.get("EventBusName") == {"Ref": "JobEventBus"}, f"{name}: a rule on another bus"
            assert props["EventPattern"].get("detail-type") == ["Swap Requested"], f"{name}: {props['EventPattern']}"
            continue
        assert resource["Type"] != "AWS::Pipes::Pipe", f"{name}: no rule, topic or pipe may subscribe to bucket events"
        if resource["Type"] == "AWS::SNS::TopicPolicy":  # the alarm topic: CloudWatch publishes, S3 may not
            principals = [s.get("Principal") for s in props["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
            assert all(p == {"Service": "cloudwatch.amazonaws.com"} for p in principals), f"{name}: {principals}"
        if resource["Type"] == "AWS::Lambda::Permission":
            assert props.get("Principal") != "s3.amazonaws.com", f"{name} lets S3 invoke a function"
    for name, props in lambda_functions.items():
        for event_name, event in props.get("Events", {}).items():
            assert event["Type"] in ("SQS", "HttpApi", "Schedule", "ScheduleV2"), (
                f"{name}.{event_name}: event type {event['Type']} could subscribe to the bucket"
            )
            if event["Type"] == "SQS":
                assert event["Properties"]["Queue"] in (
                    {"Fn::GetAtt": ["SubmitQueue", "Arn"]},
                    {"Fn::GetAtt": ["WebhookQueue", "Arn"]},
                    {"Fn::GetAtt": ["SwapRequestQueue", "Arn"]},
                )


# --------------------------------------------------------------------------- queues


def test_queue_visibility_covers_six_submit_timeouts(resources: dict[str, Any], lambda_functions: dict) -> None:
    visibility = resources["SubmitQueue"]["Properties"]["VisibilityTimeout"]
    timeout = lambda_functions["SubmitFunction"]["Timeout"]
    assert visibility >= 6 * timeout, f"VisibilityTimeout {visibility} < 6 x SubmitFunction Timeout {timeout}"
    assert visibility <= 43200, "SQS caps VisibilityTimeout at 12 hours"


def test_queue_redrives_to_the_dead_letter_queue(resources: dict[str, Any], parameters: dict) -> None:
    redrive = resources["SubmitQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["SubmitDeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "QueueMaxReceiveCount"}, (
        f"maxReceiveCount is {redrive['maxReceiveCount']!r}, want !Ref QueueMaxReceiveCount"
    )
    assert parameters["QueueMaxReceiveCount"]["Default"] > parameters["MaxSubmitAttempts"]["Default"], (
        "the DLQ must only catch crashes: QueueMaxReceiveCount must exceed MaxSubmitAttempts"
    )


def test_dead_letter_queue_keeps_messages_longest(resources: dict[str, Any]) -> None:
    dlq = resources["SubmitDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
    source = resources["SubmitQueue"]["Properties"].get("MessageRetentionPeriod", 345600)
    assert dlq == 1209600, "keep dead letters the SQS maximum, 14 days"
    assert dlq > source, "a message's age carries over into the DLQ: the DLQ must keep messages longer"


def test_the_submit_queue_keeps_a_message_as_long_as_a_job_may_wait_for_capacity(
    resources: dict[str, Any], parameters: dict[str, dict[str, Any]], lambda_functions: dict[str, dict[str, Any]]
) -> None:
    """An upload not received before its message expires never becomes a job: a burst waiting for upstream
    capacity (up to MaxQueueWaitHours) must not lose its messages first (it was 4 days)."""
    source = resources["SubmitQueue"]["Properties"]["MessageRetentionPeriod"]
    wait = parameters["MaxQueueWaitHours"]
    assert (wait["Default"], wait["MinValue"]) == (24, 1)
    assert source >= wait["MaxValue"] * 3600 >= 13 * 24 * 3600
    assert lambda_functions["ReconcileFunction"]["Environment"]["Variables"]["MAX_QUEUE_WAIT_HOURS"] == {
        "Ref": "MaxQueueWaitHours"
    }


def test_every_queue_is_encrypted_with_sse_sqs_by_default(template: dict[str, Any], resources: dict) -> None:
    """Explicit SSE-SQS, never the AWS managed key alias/aws/sqs (S3 cannot send to a queue under it)."""
    queues = {n: r for n, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    assert set(queues) >= {"SubmitQueue", "SubmitDeadLetterQueue"}
    for name, queue in queues.items():
        props = resolve(template, queue["Properties"], parameter_defaults(template))
        assert props.get("SqsManagedSseEnabled") is True, f"{name} is not explicitly encrypted (SqsManagedSseEnabled)"
        assert "KmsMasterKeyId" not in props, f"{name} names a KMS key without KmsKeyArn: {props['KmsMasterKeyId']!r}"


def queue_policies(resources: dict[str, Any], queue: str) -> list[dict[str, Any]]:
    return [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and {"Ref": queue} in r["Properties"]["Queues"]
    ]


def test_only_this_bucket_in_this_account_may_send_to_the_queue(resources: dict[str, Any]) -> None:
    (policy,) = queue_policies(resources, "SubmitQueue")
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1, "one Allow: S3 notifications from the media bucket"
    (allow,) = allows
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert as_list(allow["Action"]) == ["sqs:SendMessage"]
    condition = allow["Condition"]
    assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    source_arn = condition["ArnEquals"]["aws:SourceArn"]
    name = bucket(resources)["BucketName"]
    assert source_arn == {"Fn::Sub": [f"arn:${{AWS::Partition}}:s3:::{name['Fn::Sub'][0]}", name["Fn::Sub"][1]]}, (
        "the queue policy's aws:SourceArn must spell the bucket's ARN with the same name expression as BucketName "
        f"(got {source_arn!r})"
    )


@pytest.mark.parametrize("queue", ["SubmitQueue", "SubmitDeadLetterQueue"])
def test_queues_accept_only_tls(resources: dict[str, Any], queue: str) -> None:
    policies = queue_policies(resources, queue)
    assert policies, f"{queue} has no queue policy"
    statements = [s for p in policies for s in p["Statement"]]
    assert deny_insecure_transport(statements, [{"Fn::GetAtt": [queue, "Arn"]}]), f"{queue} accepts plain HTTP"


# --------------------------------------------------------------------------- table


def test_jobs_table(resources: dict[str, Any]) -> None:
    props = resources["JobsTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "jobId", "KeyType": "HASH"}]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props.get("SSESpecification", {}).get("SSEEnabled") is True
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    want = {"jobId", OPEN_KEY, LEGACY_OPEN_KEY, "updatedAt", LIST_SORT_KEY, *LIST_INDEXES.values()}
    assert types == dict.fromkeys(want, "S"), f"AttributeDefinitions {types}"


def indexes(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["IndexName"]: i for i in resources["JobsTable"]["Properties"]["GlobalSecondaryIndexes"]}


def test_open_jobs_index(resources: dict[str, Any]) -> None:
    assert set(indexes(resources)) == {"OpenJobsByShard", "OpenJobs", *LIST_INDEXES}
    index = indexes(resources)["OpenJobsByShard"]
    assert index["KeySchema"] == [
        {"AttributeName": OPEN_KEY, "KeyType": "HASH"},
        {"AttributeName": "updatedAt", "KeyType": "RANGE"},
    ]
    # Exactly what the reconciler's OpenJob is built from: nothing it reads is missing, nothing else copied.
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(OPEN_JOB_ATTRIBUTES)}
    assert {f.name for f in fields(OpenJob)} - {"legacy"} == {"jobId", "updatedAt", *OPEN_JOB_ATTRIBUTES}


def test_the_unsharded_index_is_kept_unchanged_for_this_release(resources: dict[str, Any]) -> None:
    """Deployed stacks have it: changing or dropping it in the update that adds OpenJobsByShard would be a
    second GSI change, which CloudFormation refuses. The reconciler reads it (and empties it) meanwhile."""
    assert indexes(resources)["OpenJobs"] == {
        "IndexName": "OpenJobs",
        "KeySchema": [
            {"AttributeName": LEGACY_OPEN_KEY, "KeyType": "HASH"},
            {"AttributeName": "updatedAt", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    variables = resources["ReconcileFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["LEGACY_OPEN_JOBS_INDEX_NAME"] == "OpenJobs"


# What GET /jobs shows per row; progress and updatedAt stay out, so progress writes do not touch the lists.
LIST_PROJECTION = ["status", "face", "createdAt", "finishedAt", "targetKey", "resultKey", "failReason",
                   "requestedBy", "requesterKind", "origin"]  # fmt: skip


@pytest.mark.parametrize("name", sorted(LIST_INDEXES))
def test_list_indexes_use_the_codes_keys(resources: dict[str, Any], name: str) -> None:
    index = indexes(resources)[name]
    assert index["KeySchema"] == [
        {"AttributeName": LIST_INDEXES[name], "KeyType": "HASH"},
        {"AttributeName": LIST_SORT_KEY, "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": LIST_PROJECTION}
    assert not {"progress", "updatedAt"} & set(index["Projection"]["NonKeyAttributes"])


def test_list_index_keys_are_what_jobs_write(resources: dict[str, Any]) -> None:
    """Job.index_keys() names the attributes the indexes are keyed on; a JWT job lands in every list index."""
    job = Job(
        jobId="0" * 32, status=JobStatus.PENDING, bucket="b", face="alice", targetKey="uploads/x/target.png",
        createdAt="2025-01-01T00:00:00Z", updatedAt="2025-01-01T00:00:00Z",
        requestedBy="user-sub", requesterKind="jwt", origin="api",
    )  # fmt: skip
    keys = job.index_keys()
    for name, index in indexes(resources).items():
        for element in index["KeySchema"]:
            attribute = element["AttributeName"]
            if name == "OpenJobs":  # the unsharded index: no code writes its key now
                continue
            if name != "OpenJobsByShard" or attribute == OPEN_KEY:  # updatedAt is a field, not a derived key
                assert attribute in keys, f"{name} is keyed on {attribute}, which Job.index_keys() does not write"
    for attribute in LIST_PROJECTION:
        assert attribute in {f.name for f in fields(Job)}, f"{attribute} is projected but is no Job field"


def test_idempotency_table(template: dict[str, Any], resources: dict[str, Any]) -> None:
    table = resources["IdempotencyTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    # Powertools' DynamoDBPersistenceLayer defaults: key "id", expiry in "expiration" (epoch seconds).
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == resources["JobsTable"]["Properties"]["SSESpecification"]


def test_every_function_resource_is_serverless(resources: dict[str, Any]) -> None:
    plain = [n for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    assert not plain, f"{plain}: declare functions as {FUNCTION_TYPE} so Globals apply"
