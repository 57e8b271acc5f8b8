"""bench/bench_cost.py's DynamoDB accounting: DynamoDB's own rules for item sizes and for which
writes touch a global secondary index (key moved: delete and put; projected attribute changed:
one write; nothing it holds changed, or not in it: none)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from bench_cost import Index, item_size, number_size, value_size, write_units

KEYS = ("jobId",)
OPEN = Index("Open", ("openShard", "updatedAt"), "INCLUDE", ("status",))
BY_STATUS = Index("ByStatus", ("listStatus", "listSort"), "INCLUDE", ("status", "resultKey"))
EVERYTHING = Index("Everything", ("listAll", "listSort"), "ALL")


def job(**attributes: str) -> dict[str, dict[str, str]]:
    base = {"jobId": "j1", "listSort": "2024#j1", "listAll": "ALL#0", "status": "PENDING"}
    return {name: {"S": value} for name, value in {**base, **attributes}.items()}


@pytest.mark.parametrize(
    ("number", "size"), [("0", 2), ("7", 2), ("12", 2), ("123", 3), ("-1200", 2), ("1.50", 2), ("1729072764", 6)]
)
def test_a_number_costs_a_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert number_size(number) == size


def test_item_size_counts_names_values_and_the_overhead_of_lists_and_maps() -> None:
    assert item_size({"ab": {"S": "héllo"}}) == 2 + 6
    assert value_size({"L": [{"S": "x"}, {"BOOL": True}]}) == 3 + (1 + 1) + (1 + 1)
    assert value_size({"M": {"k": {"NULL": True}}}) == 3 + 1 + 1 + 1
    assert item_size(None) == 0


def test_a_write_that_changes_nothing_an_index_holds_costs_it_nothing() -> None:
    before = job(openShard="OPEN#1", updatedAt="t1", listStatus="PENDING#0", progress="10")
    after = {**before, "progress": {"S": "50"}}
    spent = write_units(before, after, KEYS, [BY_STATUS, EVERYTHING])
    assert spent == {"table": 1, "ByStatus": 0, "Everything": 1}, "ALL projects progress too"


def test_a_moved_index_key_costs_a_delete_and_a_put() -> None:
    before = job(openShard="OPEN#1", updatedAt="t1", listStatus="PENDING#0")
    after = {**before, "updatedAt": {"S": "t2"}, "listStatus": {"S": "SUBMITTED#0"}, "status": {"S": "SUBMITTED"}}
    assert write_units(before, after, KEYS, [OPEN, BY_STATUS]) == {"table": 1, "Open": 2, "ByStatus": 2}


def test_a_projected_attribute_changed_costs_one_write_and_entering_or_leaving_costs_one() -> None:
    before = job(listStatus="SUCCESS#0", openShard="OPEN#3", updatedAt="t1")
    after = {**job(listStatus="SUCCESS#0", resultKey="results/a.png"), "updatedAt": {"S": "t1"}}
    spent = write_units(before, after, KEYS, [OPEN, BY_STATUS])
    assert spent == {"table": 1, "Open": 1, "ByStatus": 1}, "left Open (a delete); resultKey changed in ByStatus"
    assert write_units(None, before, KEYS, [OPEN]) == {"table": 1, "Open": 1}
    assert write_units(job(), job(), KEYS, [OPEN]) == {"table": 1, "Open": 0}, "in neither before nor after"


def test_sizes_round_up_per_kilobyte_and_a_failed_condition_costs_the_existing_item_only() -> None:
    big = job(listStatus="PENDING#0", blob="x" * 1500)
    assert write_units(None, big, KEYS, [EVERYTHING, BY_STATUS]) == {"table": 2, "Everything": 2, "ByStatus": 1}
    assert write_units(big, big, KEYS, [EVERYTHING], failed=True) == {"table": 2}
