"""Concurrency slots through /__tollgate/allow (issue 14): the answer carries a release
token; POST /__tollgate/release frees the slot; twice, or a forged token, changes nothing;
a gateway that never releases gets its slot back after the rule's hold."""
from __future__ import annotations

import asyncio
import json
import time

from tests.gateway.support import call, problem_of, run_scenario

HOLD_S = 2
TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "exports", "limit": "2 concurrent", "hold_seconds": HOLD_S,
                       "match": {"paths": ["/v1/export*"]}}]}
WHO = {"X-Api-Key": "alice", "X-Original-URI": "/v1/export/7", "X-Original-Method": "GET"}


def test_allow_hands_out_release_tokens_and_release_frees_the_slot_once(tmp_path):
    async def scenario(edge, origin, http):
        allow, release = f"{edge.url}/__tollgate/allow", f"{edge.url}/__tollgate/release"
        tokens = []
        for left in (1, 0):
            status, headers, body = await call(http, "GET", allow, headers=WHO)
            doc = json.loads(body)
            assert status == 200 and doc["allowed"] is True and doc["release"] == headers["Tollgate-Release"]
            assert headers["RateLimit"] == f'"exports";r={left}'
            tokens.append(doc["release"])
        status, headers, body = await call(http, "GET", allow, headers={**WHO, "Tollgate-Deny-Status": "403"})
        assert status == 403 and problem_of(403, headers, body)["rule"] == "exports"
        assert json.loads(headers["Tollgate-Problem"])["status"] == 429 and "Tollgate-Release" not in headers

        status, _, body = await call(http, "POST", release, headers={"Tollgate-Release": tokens[0]})
        assert status == 200 and json.loads(body)["released"] is True
        status, _, body = await call(http, "POST", release, data=tokens[0])      # twice: a no-op, said so
        assert status == 200 and json.loads(body)["released"] is False
        forged = tokens[1][:-4] + ("0000" if not tokens[1].endswith("0000") else "1111")
        for bad in (forged, "nonsense", ""):
            status, headers, body = await call(http, "POST", release, headers={"Tollgate-Release": bad})
            assert problem_of(400, headers, body)["title"] == "Bad release token"
        status, headers, body = await call(http, "GET", release)
        assert status == 405 and headers["Allow"] == "POST"

        assert (await call(http, "GET", allow, headers=WHO))[0] == 200, "the released slot is free"
        assert (await call(http, "GET", allow, headers=WHO))[0] == 429, \
            "the second release and the forged one freed nothing: both slots are held"
        assert origin.count() == 0
    run_scenario(tmp_path, TOLLGATE, scenario)


def test_a_slot_never_released_counts_for_its_hold_then_frees(tmp_path):
    async def scenario(edge, origin, http):
        allow = f"{edge.url}/__tollgate/allow"
        taken = time.monotonic()
        for _ in range(2):
            assert (await call(http, "GET", allow, headers=WHO))[0] == 200
        status, headers, _ = await call(http, "GET", allow, headers=WHO)
        assert status == 429 and headers["Retry-After"] == "1"
        while (await call(http, "GET", allow, headers=WHO))[0] == 429:
            assert time.monotonic() - taken < HOLD_S + 2, "a slot nobody released outlived its hold"
            await asyncio.sleep(0.05)
        assert time.monotonic() - taken >= HOLD_S - 0.2, "the slot counted for its whole hold"
    run_scenario(tmp_path, TOLLGATE, scenario)
