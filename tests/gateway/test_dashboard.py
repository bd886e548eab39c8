"""The dashboard page, on both runtimes: the login (a signed, HttpOnly, SameSite=Strict cookie,
never a token in a URL), then, after traffic and a cron flush, the numbers the page shows
equal what the clients were answered and what the store holds (its metrics), read by a
real headless Chromium that logs in through the form; the screenshot is kept.

`TOLLGATE_UPDATE_DOCS=1 scripts/test tests/gateway/test_dashboard.py` also copies the
screenshot to docs/dashboard.png (the README's picture).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

from src.tollgate.identity import Identity, client_key
from src.tollgate.quantiles import quantile
from tests.gateway.support import ROOT, SECRETS, Origin, call, run_scenario, scheduled_path
from tests.gateway.test_usage_flow import eventually, metrics
from worker import latency

CRON = "*/5 * * * *"
TOLLGATE = {"identity": ["header:x-api-key"],
            "rules": [{"name": "burst", "limit": "5/minute", "burst": 5, "match": {"paths": ["/v1/*"]}},
                      {"name": "daily", "limit": "3/day", "algorithm": "fixed_window", "shadow": True}],
            "overrides": {"key:sk-heavy-4242": {"label": "Acme batch jobs"}}}
VARS = {"SNAPSHOT_DELAY_MS": "100", "OUTBOX_SHARDS": "2", "SNAPSHOT_STORE": "d1", "LATENCY_BATCH_MS": "0"}
ADMIN = {"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"}
PAGE = "/__tollgate/dashboard"
PLAN = ["sk-heavy-4242"] * 14 + ["sk-light-1"] * 7 + ["sk-quiet-2"] * 3 + ["sk-light-1"] * 2


def _number(text: str) -> int:
    return int(text.replace(",", "").strip())


async def _login(http, url: str) -> str:
    """The HTTP half of the login: refusals, then the cookie; returns the cookie's value."""
    status, headers, body = await call(http, "GET", url + PAGE)
    assert status == 200 and b'name="token"' in body and b"rule-burst" not in body     # the form, no data
    status, headers, body = await call(http, "GET", url + PAGE + "/data")
    assert status == 401 and json.loads(body)["status"] == 401
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = await call(http, "POST", url + PAGE + "/login", data="token=wrong", headers=form)
    assert status == 403 and b"not the admin token" in body
    status, headers, _ = await call(http, "POST", url + PAGE + "/login",
                                    data=f"token={SECRETS['ADMIN_TOKEN']}", headers=form)
    assert status == 303 and headers["Location"] == PAGE                                 # no token in any URL
    cookie = headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", f"Path={PAGE}", "Max-Age=3600"):
        assert attribute in cookie, cookie
    value = re.match(r"tollgate_dashboard=([^;]+);", cookie).group(1)
    assert SECRETS["ADMIN_TOKEN"] not in value and SECRETS["IDENTITY_SECRET"] not in value
    forged = value[:-1] + ("0" if value[-1] != "0" else "1")
    status, _, body = await call(http, "GET", url + PAGE, headers={"Cookie": f"tollgate_dashboard={forged}"})
    assert status == 200 and b'name="token"' in body and b"rule-burst" not in body
    status, headers, _ = await call(http, "POST", url + PAGE + "/logout")
    assert status == 303 and "Max-Age=0" in headers["Set-Cookie"]
    return value


def _expected(answers: list[tuple[str, int]]) -> dict:
    denied = Counter(c for c, s in answers if s == 429)
    return {"allowed": sum(1 for _, s in answers if s == 201), "denied": sum(denied.values()), "by_client": denied}


def _page_numbers(driver, rule: str) -> dict[str, int]:
    from selenium.webdriver.common.by import By
    return {f"{src}-{col}": _number(driver.find_element(By.ID, f"rule-{rule}-{src}-{col}").text)
            for src in ("outbox", "store") for col in ("allowed", "denied", "shadow_denied", "admitted")}


def _browse(url: str, tmp_path: Path, data: dict, want: dict) -> None:
    """Log in through the form in real Chromium and read the page as a user sees it."""
    from selenium.webdriver.common.by import By
    from tests.gateway.browser import chromium, full_page_screenshot, viewport

    with chromium(tmp_path / "chromium-profile") as driver:
        viewport(driver, 390, 844, mobile=True)                     # a phone first
        driver.get(url + PAGE)
        driver.find_element(By.ID, "token").send_keys(SECRETS["ADMIN_TOKEN"])
        driver.find_element(By.ID, "login").click()
        assert driver.current_url == url + PAGE and "token" not in driver.current_url
        burst = _page_numbers(driver, "burst")
        assert burst == {"outbox-allowed": want["allowed"], "outbox-denied": want["denied"], "outbox-shadow_denied": 0,
                         "outbox-admitted": want["allowed"], "store-allowed": want["allowed"],
                         "store-denied": want["denied"], "store-shadow_denied": 0, "store-admitted": want["allowed"]}
        daily = _page_numbers(driver, "daily")
        stored_daily = data["rules"][1]["store"]
        assert daily["outbox-shadow_denied"] == daily["store-shadow_denied"] == stored_daily["shadow_denied"] > 0
        heavy = client_key(SECRETS["IDENTITY_SECRET"].encode(), Identity("key", "sk-heavy-4242"))[:12]
        row = driver.find_element(By.ID, f"client-{heavy}").text
        assert "Acme batch jobs" in row and str(want["by_client"]["sk-heavy-4242"]) in row
        assert _number(driver.find_element(By.ID, "outbox-depth").text) == 0
        assert driver.find_element(By.ID, "latency-decision-burst+daily").text
        last_hour = [h for h in data["latency_hours"][0]["hours"] if h["count"]][-1]["period_start_ms"]
        assert "p99" in driver.find_element(By.ID, f"hour-decision-burst+daily-{last_hour}").get_attribute("title")
        assert "sk-heavy" not in driver.page_source and "sk-light" not in driver.page_source
        # Fits a phone: nothing wider than the screen outside the sections that scroll by themselves.
        assert driver.execute_script("return [document.documentElement.scrollWidth, innerWidth]") == [390, 390]
        full_page_screenshot(driver, tmp_path / "dashboard-phone.png", 390)
        assert driver.get_cookies()[0]["httpOnly"] and driver.get_cookies()[0]["sameSite"] == "Strict"
        shot = tmp_path / "dashboard.png"
        full_page_screenshot(driver, shot, 900)
        assert shot.stat().st_size > 10_000
    if os.environ.get("TOLLGATE_UPDATE_DOCS"):
        shutil.copyfile(shot, ROOT / "docs" / "dashboard.png")


def test_dashboard_login_then_the_page_shows_the_stores_numbers(tmp_path, runtime):
    async def scenario(edge, origin, http):
        url = edge.url
        cookie = await _login(http, url)
        answers = []
        for client in PLAN:
            status, _, _ = await call(http, "GET", f"{url}/v1/items", headers={"X-Api-Key": client})
            answers.append((client, status))
        want = _expected(answers)
        assert want["denied"] > 0 and want["by_client"]["sk-heavy-4242"] > want["by_client"]["sk-light-1"] > 0

        async def data():
            status, _, body = await call(http, "GET", f"{url}{PAGE}/data", headers=ADMIN)
            assert status == 200, body
            return json.loads(body)

        async def outboxed():
            d = await data()
            o = d["rules"][0]["outbox"]
            return d if o["allowed"] == want["allowed"] and o["denied"] == want["denied"] and d["latency"] else None
        await eventually(outboxed, "the snapshots and latency batches in the outbox")
        status, _, body = await call(http, "GET", f"{url}{scheduled_path()}?cron={CRON.replace(' ', '+')}")
        assert status == 200, body

        async def stored():
            d = await data()
            return d if d["rules"][0]["store"] == d["rules"][0]["outbox"] and d["outbox"]["depth"] == 0 else None
        got = await eventually(stored, "the flush to reach D1")
        m = await metrics(http, url)
        for rule in got["rules"]:                      # the page's store column is what the store holds
            for col in ("allowed", "denied", "shadow_denied"):
                series = f'tollgate_store_decisions_total{{rule="{rule["rule"]}",result="{col}"}}'
                assert rule["store"][col] == m[series], series
        assert got["store"] == {"kind": "d1", "readable": True, "error": None}
        heavy = client_key(SECRETS["IDENTITY_SECRET"].encode(), Identity("key", "sk-heavy-4242"))
        top = got["denied_clients"][0]
        assert top == {"client": heavy[:12], "label": "Acme batch jobs", "denied": want["by_client"]["sk-heavy-4242"],
                       "by_rule": {"burst": want["by_client"]["sk-heavy-4242"]}}
        assert [c["denied"] for c in got["denied_clients"]] == sorted(want["by_client"].values(), reverse=True)
        decision = next(r for r in got["latency"] if r["kind"] == "decision")
        buckets = [m[f'tollgate_decision_duration_seconds_bucket{{rules="burst+daily",le="{b}"}}']
                   for b in [f"{ms / 1000:g}" for ms in latency.BOUNDS_MS] + ["+Inf"]]
        per_bucket = [int(b - a) for a, b in zip([0] + buckets[:-1], buckets)]
        assert decision["count"] == len(PLAN) and decision["p99_ms"] == quantile(0.99, latency.BOUNDS_MS, per_bucket)
        # Everything was observed in this hour (or, across an hour's end, the one before): the hourly
        # series holds the same spans as the running sums.
        hourly = next(s for s in got["latency_hours"] if s["kind"] == "decision")["hours"]
        assert len(hourly) == 24 and sum(h["count"] for h in hourly) == len(PLAN)
        status, headers, body = await call(http, "GET", url + PAGE, headers={"Cookie": f"tollgate_dashboard={cookie}"})
        assert status == 200 and b'id="rule-burst-store-denied"' in body and len(body) < 16_000, len(body)
        assert "script-src" not in headers["Content-Security-Policy"] and "default-src 'none'" in headers[
            "Content-Security-Policy"]
        # In a thread: on the local runtime the Worker serves from this event loop.
        await asyncio.to_thread(_browse, url, tmp_path, got, want)

    run_scenario(tmp_path, TOLLGATE, scenario, vars=VARS, d1=True)


def test_with_the_http_store_the_page_shows_the_outbox_and_says_the_store_is_write_only(tmp_path, runtime):
    """The HTTP sink cannot be read back: the store columns are empty, the outbox's counts are there."""
    with Origin() as sink:
        vars = {**VARS, "SNAPSHOT_STORE": "http", "SNAPSHOT_SINK_URL": f"{sink.url}/usage"}
        secrets = {**SECRETS, "SNAPSHOT_SINK_SECRET": "test-sink-secret"}

        async def scenario(edge, origin, http):
            url = edge.url
            answers = []
            for client in PLAN[:10]:
                status, _, _ = await call(http, "GET", f"{url}/v1/items", headers={"X-Api-Key": client})
                answers.append((client, status))
            want = _expected(answers)

            async def outboxed():
                status, _, body = await call(http, "GET", f"{url}{PAGE}/data", headers=ADMIN)
                d = json.loads(body)
                o = d["rules"][0]["outbox"]
                return d if (o["allowed"], o["denied"]) == (want["allowed"], want["denied"]) else None
            got = await eventually(outboxed, "the snapshots in the outbox")
            assert got["store"] == {"kind": "http", "readable": False, "error": None}
            assert [r["store"] for r in got["rules"]] == [None, None]
            assert got["denied_clients"][0]["label"] == "Acme batch jobs"
            await call(http, "GET", f"{url}{scheduled_path()}?cron={CRON.replace(' ', '+')}")
            await eventually(lambda: _sink_saw(sink), "the flush to POST to the sink")
            status, headers, body = await call(http, "POST", url + PAGE + "/login",
                                               data=f"token={SECRETS['ADMIN_TOKEN']}",
                                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            cookie = headers["Set-Cookie"].split(";")[0]
            status, _, body = await call(http, "GET", url + PAGE, headers={"Cookie": cookie})
            page = body.decode()
            assert status == 200 and "HTTP sink (write-only)" in page and "cannot read it back" in page
            assert re.search(r'id="rule-burst-store-denied">–<', page)
            assert re.search(rf'id="rule-burst-outbox-denied">{want["denied"]}<', page)

        run_scenario(tmp_path, TOLLGATE, scenario, vars=vars, secrets=secrets, d1=False)


async def _sink_saw(sink) -> bool:
    return any(r["method"] == "POST" and r["path"] == "/usage" for r in sink.received)


def test_the_dashboard_is_off_without_an_admin_token_and_refuses_what_it_does_not_serve(tmp_path, runtime):
    async def scenario(edge, origin, http):
        status, headers, body = await call(http, "PUT", edge.url + PAGE)
        assert status == 405 and headers["Allow"] == "GET, HEAD"
        status, headers, _ = await call(http, "GET", edge.url + PAGE + "/login")
        assert status == 303 and headers["Location"] == PAGE
        status, headers, _ = await call(http, "DELETE", edge.url + PAGE + "/login")
        assert status == 405 and headers["Allow"] == "GET, POST"
        status, _, body = await call(http, "POST", edge.url + PAGE + "/login", data=b"token=x",
                                     headers={"Content-Type": "text/plain"})
        assert status == 400 and b"login form" in body
        status, _, body = await call(http, "GET", edge.url + PAGE + "/nothing-here")
        assert status == 404 and json.loads(body)["status"] == 404
        status, _, body = await call(http, "GET", edge.url + PAGE + "/data", headers={"Authorization": "Bearer wrong"})
        assert status == 403
    run_scenario(tmp_path / "on", TOLLGATE, scenario, vars=VARS)

    async def disabled(edge, origin, http):
        for method, path in (("GET", PAGE), ("GET", PAGE + "/data"), ("POST", PAGE + "/login")):
            status, headers, body = await call(http, method, edge.url + path)
            assert status == 403 and json.loads(body)["title"] == "Dashboard disabled", (path, body)
    without_admin = {k: v for k, v in SECRETS.items() if k != "ADMIN_TOKEN"}
    run_scenario(tmp_path / "off", TOLLGATE, disabled, vars=VARS, secrets=without_admin)
