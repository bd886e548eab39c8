"""Identities a client cannot mint (issue 11), black-box over HTTP on both runtimes:
known keys in D1 (scripts/keys), the shared `unknown` client per IP, revocation within
the cache bound, and per-rule identity across two buckets. JWTs: test_jwt_identity.py."""
from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time

import aiohttp

from tests.gateway.support import ROOT, SECRETS, RUNTIME, call, problem_of, run_scenario

ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}


def keys(tmp_path, *args: str) -> str:
    """scripts/keys against the D1 database of the runtime under test."""
    where = (["--persist-to", str(tmp_path / "state" / "workerd" / "persist")] if RUNTIME["name"] == "workerd"
             else ["--state", str(tmp_path / "state")])
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "keys"), "--config",
                           str(tmp_path / "cfg" / "wrangler.toml"), *where, *args],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def known_keys_config(mode: str, cache_seconds: float, rules: list[dict]) -> dict:
    return {"identity": ["header:x-api-key"], "rules": rules,
            "known_keys": {"unknown_keys": mode, "cache_seconds": cache_seconds}}


def test_a_thousand_made_up_keys_from_one_ip_are_held_to_one_shared_limit(tmp_path, runtime):
    tollgate = known_keys_config("per_ip", 30, [{"name": "daily", "limit": "50/day", "algorithm": "fixed_window"}])

    async def scenario(edge, origin, http):
        real = await asyncio.to_thread(keys, tmp_path, "add", "--label", "alice")
        sent = ["made-up-" + secrets.token_hex(12) for _ in range(1000)]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as many:
            async def one(key):
                status, _, _ = await call(many, "GET", f"{edge.url}/v1/x", headers={"X-Api-Key": key})
                return status
            statuses = await asyncio.gather(*(one(k) for k in sent))
        assert statuses.count(201) == 50 and statuses.count(429) == 950, sorted(set(statuses))
        assert origin.count() == 50
        # the known key has its own bucket, untouched by the flood
        status, headers, _ = await call(http, "GET", f"{edge.url}/v1/x", headers={"X-Api-Key": real})
        assert status == 201 and headers["RateLimit"].startswith('"daily";r=49;'), headers.get("RateLimit")
        # and no made-up key got a bucket of its own: the first one admitted left its key's bucket empty
        status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/{sent[0]}", headers=ADMIN)
        assert status == 200 and json.loads(body)["rules"]["daily"]["state"] is None, body
        # they were all counted in the one shared client of this address
        status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/unknown:127.0.0.1",
                                     headers=ADMIN)
        daily = json.loads(body)["rules"]["daily"]
        assert (daily["allowed"], daily["denied"]) == (50, 950), daily
    run_scenario(tmp_path, tollgate, scenario, d1=True)


def test_unknown_key_is_401_and_a_revoked_key_is_refused_within_the_cache_bound(tmp_path, runtime):
    tollgate = known_keys_config("reject", 1, [{"name": "daily", "limit": "1000/day", "algorithm": "fixed_window"}])

    async def scenario(edge, origin, http):
        url = f"{edge.url}/v1/x"
        status, headers, body = await call(http, "GET", url, headers={"X-Api-Key": "never-added"})
        doc = problem_of(401, headers, body)
        assert doc["reason"] == "unknown_key" and origin.count() == 0
        key = await asyncio.to_thread(keys, tmp_path, "add")
        assert key.startswith("tg_")
        assert (await call(http, "GET", url, headers={"X-Api-Key": key}))[0] == 201
        await asyncio.to_thread(keys, tmp_path, "revoke", key)
        revoked_at = time.monotonic()
        while True:     # cache_seconds = 1: refused within 1 s of the revocation (plus one request's time)
            status, headers, body = await call(http, "GET", url, headers={"X-Api-Key": key})
            if status == 401:
                break
            assert status == 201 and time.monotonic() - revoked_at < 1.5, (status, time.monotonic() - revoked_at)
            await asyncio.sleep(0.05)
        assert problem_of(401, headers, body)["reason"] == "unknown_key"
        listing = await asyncio.to_thread(keys, tmp_path, "list")
        assert "revoked" in listing and key not in listing, listing     # the table never holds the raw key
    run_scenario(tmp_path, tollgate, scenario, d1=True)


def test_a_request_denied_by_the_ip_rule_consumes_nothing_in_the_key_bucket(tmp_path, runtime):
    tollgate = {"identity": ["header:x-api-key"],
                "rules": [{"name": "per_key", "limit": "2/day", "algorithm": "fixed_window"},
                          {"name": "per_ip", "limit": "4/day", "algorithm": "fixed_window", "key": "ip"}]}

    async def scenario(edge, origin, http):
        url = f"{edge.url}/v1/x"
        got = [await call(http, "GET", url, headers={"X-Api-Key": k}) for k in ("a", "a", "a", "b", "b")]
        statuses = [s for s, _, _ in got]
        # a: 2 admitted, the 3rd denied by its key rule (the IP rule counted it: the stated bound);
        # b: 1 admitted (IP at 4), then denied by the IP rule
        assert statuses == [201, 201, 429, 201, 429], statuses
        assert problem_of(429, got[2][1], got[2][2])["rule"] == "per_key"
        assert problem_of(429, got[4][1], got[4][2])["rule"] == "per_ip" and origin.count() == 3
        both = got[0][1]["RateLimit-Policy"]
        assert '"per_key";q=2' in both and '"per_ip";q=4' in both, both
        status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/b", headers=ADMIN)
        per_key = json.loads(body)["rules"]["per_key"]
        assert (per_key["allowed"], per_key["denied"]) == (1, 0), per_key   # the IP denial took nothing here
        status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/a", headers=ADMIN)
        assert json.loads(body)["rules"]["per_key"]["allowed"] == 2
        assert json.loads(body)["rules"]["per_ip"]["state"] is None, "the IP rule lives in the IP's bucket"
    run_scenario(tmp_path, tollgate, scenario)


def test_behind_a_proxy_you_run_unknown_keys_are_counted_per_forwarded_address(tmp_path, runtime):
    tollgate = {"identity": ["header:x-api-key", "xff"], "trust_forwarded_for": True,
                "rules": [{"name": "daily", "limit": "2/day", "algorithm": "fixed_window"}],
                "known_keys": {"unknown_keys": "per_ip"}}

    async def scenario(edge, origin, http):
        async def status(key, address):
            return (await call(http, "GET", f"{edge.url}/v1/x",
                               headers={"X-Api-Key": key, "X-Forwarded-For": address}))[0]
        assert [await status(f"k{i}", "203.0.113.7") for i in range(3)] == [201, 201, 429]
        assert await status("k9", "203.0.113.8") == 201       # another client behind the same proxy
    run_scenario(tmp_path, tollgate, scenario, d1=True)
