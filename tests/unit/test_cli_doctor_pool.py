"""`swapdrop doctor` on a key secret holding an upstream pool: every member's key and swap API is checked,
a bad pool is a ✗ naming the field, and no key is ever shown."""

from __future__ import annotations

import json

import pytest
from swapdrop_cli.checks import API_KEY_PLACEHOLDER, check_api_key, check_swap_api, upstream_members

from unit.test_cli_doctor import OUTPUTS, Answer, FakeSecrets, healthy_http, make_doctor, run

SHARED, B_KEY = "sk-shared-0123456789", "sk-relay-b-9876543210"
POOL = {
    "apiKey": SHARED,
    "members": [
        {"name": "relay-a-1", "instanceId": "1234", "running": 3, "queued": 10},
        {"name": "relay-a-2", "instanceId": "5678"},
        {"name": "relay-b", "baseUrl": "https://relay-b.example.test/", "apiKey": B_KEY, "authStyle": "mj-api-secret"},
    ],
}


def pool_doctor(pool: dict | str = POOL, http=None):
    value = pool if isinstance(pool, str) else json.dumps(pool)
    return make_doctor(http=http or pool_http(), secretsmanager=FakeSecrets(value))


def pool_http():
    http = healthy_http()
    http.answers = {"https://relay-b.example.test": Answer(404), **http.answers}
    return http


def shown(result) -> str:
    return f"{result.detail} {result.fix or ''}"


def test_a_pool_secret_is_set_when_every_member_has_a_key() -> None:
    result = run(check_api_key, pool_doctor())
    assert result.ok is True
    assert (
        result.detail == "an upstream pool of 3 (relay-a-1, relay-a-2, relay-b), each with a key (not the placeholder)"
    )


def test_a_pool_member_whose_key_is_the_placeholder_is_named() -> None:
    pool = {**POOL, "apiKey": API_KEY_PLACEHOLDER}
    result = run(check_api_key, pool_doctor(pool))
    assert result.ok is False
    assert result.detail == "the pool's key for relay-a-1, relay-a-2 is the placeholder"
    assert "--secret-string file://pool.json" in (result.fix or "")


def test_every_member_is_fetched_at_its_own_url_with_its_own_key_and_header() -> None:
    http = pool_http()
    result = run(check_swap_api, pool_doctor(http=http))
    assert result.ok is True, result
    assert result.detail == "all 3 pool members (relay-a-1, relay-a-2, relay-b) answered a fetch of an unknown task"
    sent = sorted((url.split("/mj/")[0], json.dumps(kwargs["headers"])) for _m, url, kwargs in http.requests)
    assert sent == sorted(
        [
            (OUTPUTS["UpstreamBaseUrl"], json.dumps({"Authorization": f"Bearer {SHARED}"})),
            (OUTPUTS["UpstreamBaseUrl"], json.dumps({"Authorization": f"Bearer {SHARED}"})),
            ("https://relay-b.example.test", json.dumps({"mj-api-secret": B_KEY})),
        ]
    )
    assert SHARED not in shown(result) and B_KEY not in shown(result)


def test_one_member_refusing_its_key_is_a_cross_naming_it() -> None:
    http = pool_http()
    http.answers["https://relay-b.example.test"] = Answer(401)
    result = run(check_swap_api, pool_doctor(http=http))
    assert result.ok is False
    assert (
        result.detail == "1 of 3 pool members failed: relay-b: https://relay-b.example.test refused the key: HTTP 401"
    )
    assert "file://pool.json (the pool JSON with a working key for relay-b)" in (result.fix or "")
    assert B_KEY not in shown(result)


def test_one_member_down_is_a_cross_naming_it() -> None:
    http = pool_http()
    http.answers["https://relay-b.example.test"] = Answer(502)
    result = run(check_swap_api, pool_doctor(http=http))
    assert result.ok is False and result.detail.startswith("1 of 3 pool members failed: relay-b: ")
    assert "is failing: HTTP 502" in result.detail


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (f'{{"apiKey": "{SHARED}", "members": [', "the secret starts with { (an upstream pool) but is not valid JSON"),
        ({"apiKey": SHARED}, "the secret's upstream pool: members must be a list of 1 to 50 members"),
        ({"apiKey": SHARED, "members": []}, "members must be a list of 1 to 50 members"),
        ({"apiKey": SHARED, "members": [{"name": "a"}, {"name": "a"}]}, "members[1].name 'a' is used twice"),
        ({"apiKey": SHARED, "members": [{"name": "-bad"}]}, "members[0].name must match"),
        ({"members": [{"name": "a", "apiKey": SHARED}, {"name": "b"}]}, "members[1].apiKey (b) is missing"),
        ({"apiKey": SHARED, "members": [{"name": "a", "authStyle": "basic"}]}, "members[0].authStyle (a) must be"),
        ({"apiKey": SHARED, "members": [{"name": "a", "baseUrl": "ftp://x"}]}, "members[0].baseUrl (a) must be"),
    ],
)
def test_a_bad_pool_is_a_cross_naming_the_field_never_the_key(value: dict | str, detail: str) -> None:
    for check in (check_api_key, check_swap_api):
        result = run(check, pool_doctor(value))
        assert result.ok is False and detail in result.detail, result
        assert "README: Upstream pool" in (result.fix or "")
        assert SHARED not in shown(result)


def test_a_plain_key_is_one_default_member() -> None:
    (member,) = upstream_members("sk-plain")
    assert (member.name, member.base_url, member.auth_style, member.api_key) == ("default", None, None, "sk-plain")
    assert "sk-plain" not in repr(member)
