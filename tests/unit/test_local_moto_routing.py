"""The local stack's patches to moto: the dispatcher remembers each host's backend (the same answers as
moto's own lookup, without listing moto's package under its global lock on every request), and DynamoDB
attribute values are serialised member by member present (the same answers as moto's own serialiser)."""

from __future__ import annotations

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import backends, mock_aws
from moto.core import serialize as _serialize
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
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
