"""`swapdrop local --upstream-pool N`: the options it becomes, the pool JSON the key secret gets, and the
usage errors for options that exclude each other (no stack is started here)."""

from __future__ import annotations

import json

import pytest
from swapdrop_local.cli import build_parser, main, options_from
from swapdrop_local.stack import PoolMemberInfo, pool_secret


def parse(*argv: str):
    return options_from(build_parser().parse_args(["local", *argv]))


def test_without_the_flag_the_stack_is_as_before() -> None:
    options = parse()
    assert options.upstream_pool is None and options.pool_members == []


def test_a_pool_of_three_with_limits_and_a_fault_on_one_member() -> None:
    options = parse(
        "--upstream-pool", "3", "--pool-running", "2", "--pool-queued", "5", "--pool-fault", "2=status=500@0.5"
    )
    assert options.upstream_pool == 3
    assert options.pool_members == [
        {"concurrency": 2, "queue_size": 5, "faults": []},
        {"concurrency": 2, "queue_size": 5, "faults": ["status=500@0.5"]},
        {"concurrency": 2, "queue_size": 5, "faults": []},
    ]


def test_default_member_limits_are_midjourney_proxys() -> None:
    assert parse("--upstream-pool", "1").pool_members == [{"concurrency": 3, "queue_size": 10, "faults": []}]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pool-fault", "1=reset"], "--pool-fault needs --upstream-pool"),
        (["--upstream-pool", "2", "--upstream", "http://127.0.0.1:9"], "exclude each other"),
        (["--upstream-pool", "2", "--pool-fault", "3=reset"], "names member 3, but the pool has 2"),
        (["--upstream-pool", "0"], "expected 1 to 50, got 0"),
        (["--upstream-pool", "51"], "expected 1 to 50, got 51"),
        (["--upstream-pool", "2", "--pool-fault", "x=reset"], "expected MEMBER=SPEC"),
        (["--upstream-pool", "2", "--pool-fault", "1=no_such_fault"], "--pool-fault '1=no_such_fault'"),
    ],
)
def test_usage_errors_say_what_is_wrong(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["local", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_the_pool_secret_names_every_member_in_order() -> None:
    members = [
        PoolMemberInfo("emulator-1", "http://127.0.0.1:1001", "instance-1", 3, 10),
        PoolMemberInfo("emulator-2", "http://127.0.0.1:1002", "instance-2", 1, 0),
    ]
    assert json.loads(pool_secret("sk-local", members, {"benchSeconds": 5})) == {
        "apiKey": "sk-local",
        "benchSeconds": 5,
        "members": [
            {
                "name": "emulator-1",
                "baseUrl": "http://127.0.0.1:1001",
                "instanceId": "instance-1",
                "running": 3,
                "queued": 10,
            },
            {
                "name": "emulator-2",
                "baseUrl": "http://127.0.0.1:1002",
                "instanceId": "instance-2",
                "running": 1,
                "queued": 0,
            },
        ],
    }


def test_the_pool_secret_is_one_the_functions_accept() -> None:
    """The layer's own parser reads what the local stack writes (defaults from the stack's parameters)."""
    from swapdrop.upstream_pool import parse_pool

    members = [PoolMemberInfo(f"emulator-{n}", f"http://127.0.0.1:100{n}", f"instance-{n}", 3, 10) for n in (1, 2, 3)]
    pool = parse_pool(pool_secret("sk-local", members), "http://127.0.0.1:1001", "bearer", "")
    names = [member.name for member in pool.members]
    assert names == ["emulator-1", "emulator-2", "emulator-3"]
    assert [(m.base_url, m.instance_id, m.running, m.queued, m.api_key) for m in pool.members] == [
        (f"http://127.0.0.1:100{n}", f"instance-{n}", 3, 10, "sk-local") for n in (1, 2, 3)
    ]
