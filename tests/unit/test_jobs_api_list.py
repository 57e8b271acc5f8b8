"""GET /jobs: the right index for each filter, shards merged newest first, pages that join up, signed cursors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from swapdrop.jobs import LIST_SHARDS, JobStatus, iso, list_shard

from .api_events import Api, call, jwt
from .builders import make_job
from .conftest import World

STATUSES = [JobStatus.SUCCESS, JobStatus.FAILURE, JobStatus.PENDING]


def seed(world: World, count: int = 30) -> list[str]:
    """`count` jobs a minute apart, faces alice/bob alternating, statuses cycling; newest first."""
    start = world.clock.now - timedelta(hours=2)
    ids = []
    for n in range(count):
        created = iso(start + timedelta(minutes=n))
        job_id = f"{n:04d}" + "a" * 28
        owner = {"requestedBy": "user-1", "requesterKind": "jwt"} if n % 3 == 0 else {}
        world.jobs.put(
            make_job(
                jobId=job_id,
                face="alice" if n % 2 == 0 else "bob",
                status=STATUSES[n % 3],
                createdAt=created,
                updatedAt=created,
                **owner,
            )
        )
        ids.append(job_id)
    assert len({list_shard(i) for i in ids}) == LIST_SHARDS  # the test data spans every shard
    return ids[::-1]


def pages(query: dict, **kwargs) -> list[list[str]]:
    found, cursor = [], None
    while True:
        reply = call("GET", "/jobs", query=query | ({"cursor": cursor} if cursor else {}), **kwargs)
        assert reply.status == 200, reply.body
        found.append([job["jobId"] for job in reply.body["jobs"]])
        cursor = reply.body["cursor"]
        if cursor is None:
            return found


def test_all_jobs_newest_first_across_pages(api: Api) -> None:
    ids = seed(api.world)
    got = pages({"limit": 7})
    assert [len(p) for p in got[:4]] == [7, 7, 7, 7]
    assert [i for page in got for i in page] == ids
    assert {q.index for q in api.world.jobs.list_queries} == {"JobsByTime"}
    assert {q.partition for q in api.world.jobs.list_queries} == {f"ALL#{s}" for s in range(LIST_SHARDS)}


def test_each_filter_uses_its_index_by_key_condition(api: Api) -> None:
    ids = seed(api.world)
    by_status = pages({"status": "FAILURE", "limit": 4})
    assert [i for p in by_status for i in p] == [i for i in ids if int(i[:4]) % 3 == 1]
    assert {q.index for q in api.world.jobs.list_queries} == {"JobsByStatus"}
    assert all(not q.filters for q in api.world.jobs.list_queries)
    api.world.jobs.list_queries.clear()
    by_face = pages({"face": "bob", "limit": 5})
    assert [i for p in by_face for i in p] == [i for i in ids if int(i[:4]) % 2 == 1]
    assert {q.index for q in api.world.jobs.list_queries} == {"JobsByFace"}
    api.world.jobs.list_queries.clear()
    both = pages({"face": "alice", "status": "SUCCESS", "limit": 2})
    assert [i for p in both for i in p] == [i for i in ids if int(i[:4]) % 6 == 0]
    assert {q.index for q in api.world.jobs.list_queries} == {"JobsByFace"}
    assert all(q.filters == {"status": "SUCCESS"} for q in api.world.jobs.list_queries)


def test_since_and_until_bound_the_sort_key(api: Api) -> None:
    ids = seed(api.world)
    start = api.world.clock.now - timedelta(hours=2)
    since, until = iso(start + timedelta(minutes=10)), iso(start + timedelta(minutes=20))
    got = [i for p in pages({"since": since, "until": until, "limit": 3}) for i in p]
    assert got == [i for i in ids if 10 <= int(i[:4]) < 20]


def test_a_jwt_caller_lists_only_its_own_jobs_through_the_owner_index(api: Api) -> None:
    ids = seed(api.world)
    got = [i for p in pages({"limit": 4}, authorizer=jwt("user-1")) for i in p]
    assert got == [i for i in ids if int(i[:4]) % 3 == 0]
    assert {(q.index, q.partition) for q in api.world.jobs.list_queries} == {("JobsByOwner", "user-1")}
    api.world.jobs.list_queries.clear()
    filtered = [i for p in pages({"face": "alice", "limit": 3}, authorizer=jwt("user-1")) for i in p]
    assert filtered == [i for i in ids if int(i[:4]) % 6 == 0]
    assert all(q.filters == {"face": "alice"} for q in api.world.jobs.list_queries)
    assert pages({}, authorizer=jwt("nobody")) == [[]]


def test_list_items_come_from_the_index_projection(api: Api) -> None:
    seed(api.world, 8)
    job = call("GET", "/jobs", query={"limit": 1}).body["jobs"][0]
    assert set(job) == {
        "jobId",
        "status",
        "face",
        "createdAt",
        "finishedAt",
        "failReason",
        "origin",
        "target",
        "resultKey",
        "links",
    }


@pytest.mark.parametrize("limit", [5, 40, 100])
def test_a_page_reads_about_its_own_size_not_a_page_per_shard(api: Api, limit: int) -> None:
    ids = seed(api.world, 400)
    reply = call("GET", "/jobs", query={"limit": limit})
    assert [job["jobId"] for job in reply.body["jobs"]] == ids[:limit]
    asked = sum(q.limit for q in api.world.jobs.list_queries)
    # each shard first gets its share of the page plus one, and more only when the merge runs out of it;
    # asking every shard for the whole page would read up to LIST_SHARDS times the page
    assert asked <= limit + 3 * LIST_SHARDS


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),
        lambda c: "x" + c,
        lambda c: c.replace(".", ""),
        lambda c: "a" * 3000,
        lambda c: "eyJwIjoiMjAzMCJ9.AAAA",
    ],
)
def test_a_tampered_cursor_is_400(api: Api, tamper) -> None:
    seed(api.world, 10)
    cursor = call("GET", "/jobs", query={"limit": 2}).body["cursor"]
    reply = call("GET", "/jobs", query={"limit": 2, "cursor": tamper(cursor)})
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")


def test_a_cursor_cannot_be_reused_with_other_filters_or_by_another_caller(api: Api) -> None:
    seed(api.world, 10)
    cursor = call("GET", "/jobs", query={"limit": 2}).body["cursor"]
    assert call("GET", "/jobs", query={"limit": 2, "cursor": cursor, "status": "SUCCESS"}).status == 400
    assert call("GET", "/jobs", query={"limit": 2, "cursor": cursor}, authorizer=jwt("user-1")).status == 400
    assert call("GET", "/jobs", query={"limit": 3, "cursor": cursor}).status == 200  # the page size may change


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 101}, {"status": "DONE"}, {"since": "yesterday"}, {"face": ""}],
)
def test_bad_list_parameters_are_400(api: Api, query: dict) -> None:
    reply = call("GET", "/jobs", query=query)
    assert (reply.status, reply.error["code"]) == (400, "invalid_request")
    assert reply.error["details"][0]["loc"][0] == "query"
