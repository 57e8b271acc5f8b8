"""The local stack's patches to moto: the dispatcher remembers each host's backend (the same answers as
moto's own lookup, without listing moto's package under its global lock on every request), and DynamoDB
attribute values are serialised member by member present (the same answers as moto's own serialiser)."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import backends, mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core import serialize as _serialize
from moto.dynamodb import models as _dynamodb_models
from moto.dynamodb import responses as _dynamodb_responses
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs import models as _sqs_models
from swapdrop_local import moto_routing

HOSTS = [
    "dynamodb.us-east-1.amazonaws.com",
    "sqs.us-east-1.amazonaws.com",
    "s3.amazonaws.com",
    "events.us-east-1.amazonaws.com",
    "secretsmanager.us-east-1.amazonaws.com",
    "logs.us-east-1.amazonaws.com",
    "cloudformation.us-east-1.amazonaws.com",
    "moto_api",
    "s3",
]


@pytest.fixture
def remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", moto_routing._original)
    moto_routing.remember_backends()


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = backends.list_of_moto_modules

    def counted():
        calls.append(1)
        return real()

    monkeypatch.setattr(backends, "list_of_moto_modules", counted)
    return calls


def test_the_same_backend_as_moto_for_every_service_the_stack_uses(remembered: None) -> None:
    plain, cached = DomainDispatcherApplication(create_backend_app), DomainDispatcherApplication(create_backend_app)
    expected = [moto_routing._original(plain, host) for host in HOSTS]
    assert [cached.get_backend_for_host(host) for host in HOSTS] == expected
    assert [cached.get_backend_for_host(host) for host in HOSTS] == expected  # and again, remembered
    assert cached.get_backend_for_host(None) is None


def test_a_host_is_looked_up_once(remembered: None, listings: list[int]) -> None:
    dispatcher = DomainDispatcherApplication(create_backend_app)
    for _ in range(5):
        assert dispatcher.get_backend_for_host("dynamodb.us-east-1.amazonaws.com") == "dynamodb"
    assert len(listings) == 1


def test_an_unknown_host_is_not_remembered(remembered: None, listings: list[int]) -> None:
    dispatcher = DomainDispatcherApplication(create_backend_app)
    assert dispatcher.get_backend_for_host("nothing.example") is None
    assert dispatcher.get_backend_for_host("nothing.example") is None
    assert len(listings) == 2


# --- DynamoDB attribute values: the fast path answers what moto's own serialiser answers -----------------

_scalars = st.one_of(
    st.builds(lambda v: {"S": v}, st.text(max_size=12)),
    st.builds(lambda v: {"N": str(v)}, st.integers(min_value=-(10**30), max_value=10**30)),
    st.builds(lambda v: {"B": v}, st.binary(max_size=12)),
    st.builds(lambda v: {"BOOL": v}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda v: {"SS": sorted(v)}, st.sets(st.text(min_size=1, max_size=6), min_size=1, max_size=3)),
    st.builds(lambda v: {"NS": sorted(str(n) for n in v)}, st.sets(st.integers(), min_size=1, max_size=3)),
    st.builds(lambda v: {"BS": sorted(v)}, st.sets(st.binary(min_size=1, max_size=6), min_size=1, max_size=3)),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=4)),
        st.builds(lambda v: {"M": v}, st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=4)),
    ),
    max_leaves=12,
)
_items = st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: k != "pk"), _values, max_size=6)


@pytest.fixture(scope="module")
def table():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield dynamodb


def _read_back(dynamodb, fast: bool) -> tuple[dict, list, dict]:
    serializer = _serialize.BaseJSONSerializer
    serializer._serialize_type_structure = (
        moto_routing._serialize_structure if fast else moto_routing._original_serialize_structure
    )
    try:
        got = dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]
        scanned = dynamodb.scan(TableName="t")["Items"]
        updated = dynamodb.update_item(
            TableName="t",
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET touched = :t",
            ExpressionAttributeValues={":t": {"L": [{"N": "1"}, {"M": {"x": {"NULL": True}}}]}},
            ReturnValues="ALL_OLD",
        )["Attributes"]
        return got, scanned, updated
    finally:
        serializer._serialize_type_structure = moto_routing._original_serialize_structure


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item=_items)
def test_fast_attribute_values_answer_what_motos_serialiser_answers(table, item: dict) -> None:
    stored = {"pk": {"S": "a"}, **item}
    table.put_item(TableName="t", Item=stored)
    slow = _read_back(table, fast=False)
    table.put_item(TableName="t", Item=stored)
    fast = _read_back(table, fast=True)
    assert fast == slow
    assert fast[0] == stored  # and both are the item as written


def test_fast_attribute_values_leave_other_structures_to_moto(table) -> None:
    """A structure that is not an AttributeValue (the table's description) goes through moto's own path."""
    table.put_item(TableName="t", Item={"pk": {"S": "a"}})
    serializer = _serialize.BaseJSONSerializer
    serializer._serialize_type_structure = moto_routing._serialize_structure
    try:
        described = table.describe_table(TableName="t")["Table"]
    finally:
        serializer._serialize_type_structure = moto_routing._original_serialize_structure
    assert described["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert described["TableStatus"] == "ACTIVE"


# --- atomic operations: the races that lost work, made to happen on purpose ------------------------------


@pytest.fixture
def atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto as the local stack runs it (undone after the test: the patches are process-wide)."""
    monkeypatch.setattr(_sqs_models.Queue, "delete_message", moto_routing._original_sqs_delete)
    monkeypatch.setattr(_dynamodb_responses.DynamoHandler, "call_action", moto_routing._original_dynamodb_call)
    moto_routing.atomic_operations()


def _meanwhile(action) -> threading.Thread:
    """Run `action` on another thread and give it up to a second to finish (a blocked one finishes later)."""
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    thread.join(1.0)
    return thread


class _WalkedTwice(list):
    """A queue's message list that runs `hook` once a walk of it is over, before the walker goes on: the first
    walk DeleteMessage completes is the copy it puts back (its check that the receipt is known stops early)."""

    def __init__(self, items: list[Any], hook: Any) -> None:
        super().__init__(items)
        self._hook = hook
        self._walks = 0

    def __iter__(self):
        yield from super().__iter__()
        self._walks += 1
        if self._walks == 1:
            self._hook()


def _sqs_send_during_delete() -> list[str]:
    """A message deleted while another is sent to the queue, the send landing between the delete's copy of the
    queue's messages and its putting the copy back: the bodies left in the queue."""
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        name = f"submit-{uuid.uuid4().hex[:8]}"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="done")
        handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
        backend = _sqs_models.sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        queue = backend.get_queue(name)
        sends: list[threading.Thread] = []
        queue._messages = _WalkedTwice(
            queue._messages, lambda: sends.append(_meanwhile(lambda: backend.send_message(name, "resent")))
        )
        sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
        assert len(sends) == 1, "the delete walked the queue's messages twice"
        sends[0].join(10)
        return [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]


def test_moto_alone_loses_a_message_sent_while_another_is_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race itself, on moto as it ships (why the patch exists: if moto fixes it, this fails)."""
    monkeypatch.setattr(_sqs_models.Queue, "delete_message", moto_routing._original_sqs_delete)
    assert _sqs_send_during_delete() == []


def test_a_message_sent_while_another_is_deleted_is_kept(atomic: None) -> None:
    assert _sqs_send_during_delete() == ["resent"]


class _PutDuringWalk(defaultdict):
    """A table's items that run `hook` once, after the first item of a walk over them (an index query's)."""

    def __init__(self, items: dict[Any, Any], hook: Any) -> None:
        super().__init__(dict, items)
        self._hook = hook

    def values(self):
        for value in super().values():
            yield value
            if self._hook:
                hook, self._hook = self._hook, None
                hook()


def _query_during_put() -> tuple[list[str], Exception | None]:
    """An index query walking the table while a put adds an item: the keys it found, or what it raised."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        table_name = f"jobs-{uuid.uuid4().hex[:8]}"
        dynamodb.create_table(
            TableName=table_name,
            KeySchema=[{"AttributeName": "jobId", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "jobId", "AttributeType": "S"},
                {"AttributeName": "shard", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "Open",
                    "KeySchema": [{"AttributeName": "shard", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(3):
            dynamodb.put_item(TableName=table_name, Item={"jobId": {"S": f"job-{n}"}, "shard": {"S": "OPEN#0"}})
        other = boto3.client("dynamodb", region_name="us-east-1")
        table = _dynamodb_models.dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(table_name)
        puts: list[threading.Thread] = []
        table.items = _PutDuringWalk(
            table.items,
            lambda: puts.append(
                _meanwhile(lambda: other.put_item(TableName=table_name, Item={"jobId": {"S": "job-new"}}))
            ),
        )
        try:
            found = dynamodb.query(
                TableName=table_name,
                IndexName="Open",
                KeyConditionExpression="shard = :s",
                ExpressionAttributeValues={":s": {"S": "OPEN#0"}},
            )["Items"]
            error = None
        except Exception as raised:  # moto's 500 arrives as a ClientError (botocore retries it first)
            found, error = [], raised
        finally:
            for put in puts:
                put.join(10)
        return sorted(item["jobId"]["S"] for item in found), error


def test_an_index_query_is_not_broken_by_a_put_that_lands_during_it(
    atomic: None,
) -> None:
    found, error = _query_during_put()
    assert error is None
    assert found == ["job-0", "job-1", "job-2"]  # the put came after the query, as one at a time


def test_moto_alone_breaks_the_query_when_a_put_lands_during_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race itself, on moto as it ships (why the patch exists: if moto fixes it, this fails)."""
    monkeypatch.setattr(_dynamodb_responses.DynamoHandler, "call_action", moto_routing._original_dynamodb_call)
    _found, error = _query_during_put()
    assert error is not None and "changed size during iteration" in str(error)
