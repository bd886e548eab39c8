"""The dashboard's HTML: the login form and the page, rendered from `dashboard_data.gather`.

Why server-rendered with inline CSS and no script: the Worker serves every byte
(no CDN, no build step, no font download), a phone gets one small document
that reads before any JavaScript could run, and the Content-Security-Policy can
forbid scripts altogether. Every value from the data is HTML-escaped; a client
appears as its hash prefix and the operator's label, never as a key.
"""
from __future__ import annotations

import time
from html import escape
from typing import Any

PAGE_PATH = "/__tollgate/dashboard"
HEADERS = [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"),
           ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                       "frame-ancestors 'none'; base-uri 'none'"),
           ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]

CSS = """:root{color-scheme:light dark;--fg:#1c2430;--mut:#5b6675;--bg:#f6f7f9;--card:#fff;--line:#dde1e6;
--ok:#2f7d4f;--bad:#c0392b;--sh:#b7791f}
@media(prefers-color-scheme:dark){:root{--fg:#e6e9ee;--mut:#9aa5b4;--bg:#12161c;--card:#1b2129;--line:#2c343f}}
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.05rem;margin:0 0 .5rem}
header{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:baseline;gap:.5rem}
section{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.8rem;margin:.8rem 0;
overflow-x:auto}table{border-collapse:collapse;width:100%}th,td{padding:.3rem .45rem;text-align:right;
white-space:nowrap;border-bottom:1px solid var(--line)}th:first-child,td:first-child{text-align:left}
th{font-size:.8rem;color:var(--mut);font-weight:600}td.n{font-variant-numeric:tabular-nums}
.mut,small{color:var(--mut)}.note{font-size:.85rem;color:var(--mut);margin:.4rem 0 0}
.ok{color:var(--ok)}.bad{color:var(--bad)}.sh{color:var(--sh)}code{font-size:.85rem}
.bar{height:.35rem;background:var(--line);border-radius:.2rem;min-width:4rem}
.bar i{display:block;height:100%;background:var(--bad);border-radius:.2rem}
.kpi{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:.6rem}
.kpi div{border:1px solid var(--line);border-radius:.4rem;padding:.5rem}.kpi b{display:block;font-size:1.25rem}
form{display:inline}button{font:inherit;padding:.35rem .8rem;border-radius:.35rem;border:1px solid var(--line);
background:var(--card);color:var(--fg)}input{font:inherit;padding:.45rem;width:100%;margin:.4rem 0 .7rem;
border:1px solid var(--line);border-radius:.35rem;background:var(--bg);color:var(--fg)}
.login{max-width:22rem;margin:12vh auto}
.spark{display:flex;align-items:flex-end;gap:1px;height:2.6rem;border-bottom:1px solid var(--line)}
.spark i{flex:1;background:var(--ok);min-height:1px}.spark i.none{background:none}
.hours{margin-top:1.2rem}.hours p{margin:.5rem 0 .2rem}.axis{display:flex;justify-content:space-between;font-size:.75rem;color:var(--mut)}
@media(max-width:40rem){main{padding:.5rem}section{padding:.6rem}th,td{padding:.25rem .3rem;font-size:.85rem}}"""


def _doc(title: str, body: str, refresh_s: int | None = None) -> str:
    meta = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">{meta}'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>")


def login_page(error: str | None = None) -> str:
    """The form that trades ADMIN_TOKEN for a session cookie (POSTed: never in the URL)."""
    problem = f'<p class="bad" id="login-error">{escape(error)}</p>' if error else ""
    return _doc("Tollgate: log in", f"""<main class="login"><section><h1>Tollgate dashboard</h1>{problem}
<form method="post" action="{PAGE_PATH}/login"><label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit" id="login">Log in</button></form>
<p class="note">The token is checked once; the session lasts an hour.</p></section></main>""")


def _n(value: Any) -> str:
    return "–" if value is None else f"{value:,}"


def _ms(value: float | None, over: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{value / 1000:.3g} s" if value >= 1000 else f"{value:.0f} ms" if value >= 10 else f"{value:.2g} ms"
    return f"&gt;&#8239;{text}" if over else text


def _ago(now_ms: int, then_ms: int | None) -> str:
    if then_ms is None:
        return "never"
    s = max(0, (now_ms - then_ms) // 1000)
    return f"{s} s ago" if s < 120 else f"{s // 60} min ago" if s < 7200 else f"{s // 3600} h ago"


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def _store_note(data: dict) -> str:
    store = data["store"]
    if store["kind"] == "http":
        return ("The usage store is the HTTP sink, which is write-only: Tollgate cannot read it back, so the "
                "store columns are empty and every figure here is what the outbox shards counted (the same counts "
                "the sink was sent).")
    if not store["readable"]:
        return f"The usage store ({escape(store['kind'])}) could not be read: {escape(store['error'] or '')}."
    return ("Outbox: counted when each bucket's snapshot arrived, seconds behind the traffic. Store: what the cron "
            "flush has written to D1, one flush behind the outbox.")


def _rules(data: dict) -> str:
    rows = []
    for r in data["rules"]:
        o = r["outbox"] or {}
        seen = o.get("allowed", 0) + o.get("denied", 0)
        share = 100 * o.get("denied", 0) / seen if seen else 0
        tag = ' <small class="sh">shadow</small>' if r["shadow"] else ""
        tag += "" if r["configured"] else ' <small class="mut">not configured now</small>'
        limit = f'<br><small>{escape(r["limit"])}</small>' if r["limit"] else ""
        name = escape(r["rule"])
        cells = "".join(f'<td class="n" id="rule-{name}-{src}-{col}">{_n(d.get(col) if d else None)}</td>'
                        for src, d in (("outbox", r["outbox"]), ("store", r["store"]))
                        for col in ("allowed", "denied", "shadow_denied", "admitted"))
        rows.append(f'<tr><td>{name}{tag}{limit}</td>{cells}<td><div class="bar" title="{share:.0f}% denied">'
                    f'<i style="width:{share:.1f}%"></i></div><small>{share:.0f}%</small></td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("Rule", "Admitted", "Denied", "Would deny", "Cost", "Admitted",
                                              "Denied", "Would deny", "Cost", "Denied share"))
    missing = ""
    if data["shards_up"] < data["shards"]:
        missing = (f'<p class="note bad">{data["shards_up"]} of {data["shards"]} outbox shards answered: the outbox '
                   "columns are left out rather than shown short.</p>")
    return (f'<section id="rules"><h2>Per rule, last {data["window_hours"]} hours</h2><table><thead>'
            f'<tr><th></th><th colspan="4">Outbox</th><th colspan="4">Store</th><th></th></tr><tr>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>{missing}<p class="note">{_store_note(data)} '
            f'Since {_utc(data["since_ms"])} (whole UTC hours: usage is counted per hour). "Would deny": a shadow '
            "rule's denials, not enforced. Cost: admitted cost.</p></section>")


def _clients(data: dict) -> str:
    rows = "".join(
        f'<tr id="client-{escape(c["client"])}"><td><code>{escape(c["client"])}</code>'
        f'{" " + escape(c["label"]) if c["label"] else ""}</td><td class="n">{_n(c["denied"])}</td>'
        f'<td><small>{escape(", ".join(f"{k} {v:,}" for k, v in sorted(c["by_rule"].items())))}</small></td></tr>'
        for c in data["denied_clients"])
    body = (f"<table><thead><tr><th>Client</th><th>Denied</th><th>By rule</th></tr></thead><tbody>{rows}</tbody>"
            "</table>" if rows else '<p class="mut">No client was denied.</p>')
    return (f'<section id="clients"><h2>Clients most often denied, last {data["window_hours"]} hours</h2>{body}'
            '<p class="note">A client is its hash prefix (<code>scripts/reconcile report --client PREFIX</code>) and '
            "the <code>label</code> of its override, if any; keys are never shown.</p></section>")


def _outbox(data: dict) -> str:
    o, now = data["outbox"], data["now_ms"]
    lag_class = "bad" if o["lag_s"] > 900 else "ok"
    items = (("Outbox depth", f'<b id="outbox-depth">{_n(o["depth"])}</b><small>{_n(o["leased"])} leased</small>'),
             ("Flush lag", f'<b id="flush-lag" class="{lag_class}">{o["lag_s"]:.1f} s</b>'
                           "<small>oldest change not in the store</small>"),
             ("Last complete flush", f'<b id="last-flush">{_ago(now, o["last_flush_ms"])}</b>'),
             ("Shards up", f'<b id="shards-up">{data["shards_up"]} / {data["shards"]}</b>'))
    cells = "".join(f"<div><small>{k}</small>{v}</div>" for k, v in items)
    return f'<section id="outbox"><h2>Outbox and flush</h2><div class="kpi">{cells}</div></section>'


SPAN_NAMES = {"decision": "Decision round trip", "origin": "Origin answer", "added": "Added by the gateway"}


def _latency(data: dict) -> str:
    names = SPAN_NAMES
    rows = "".join(
        f'<tr id="latency-{escape(r["kind"])}-{escape(r["rules"])}"><td>{names.get(r["kind"], escape(r["kind"]))}'
        f'<br><small>{escape(r["rules"])}</small></td><td class="n">{_n(r["count"])}</td>'
        + "".join(f'<td class="n">{_ms(r[f"{q}_ms"], r[f"{q}_over"])}</td>' for q in ("p50", "p90", "p99"))
        + f'<td class="n">{_ms(r["mean_ms"])}</td></tr>' for r in data["latency"])
    body = (f"<table><thead><tr><th>Span, rule set</th><th>Count</th><th>p50</th><th>p90</th><th>p99</th>"
            f"<th>Mean</th></tr></thead><tbody>{rows}</tbody></table>" if rows
            else '<p class="mut">No latency observed yet.</p>')
    return (f'<section id="latency"><h2>Latency</h2>{body}<p class="note">Percentiles over everything observed '
            "since the outbox shards began counting (the sums /__tollgate/metrics exports), interpolated within "
            "buckets of 1 ms to 10 s as histogram_quantile does; the Workers clock advances only across I/O, so "
            f"spans hold waits, not the Worker's CPU.</p>{_latency_hours(data)}</section>")


def _latency_hours(data: dict) -> str:
    """p99 per hour over the window, one bar per hour (tallest: the row's highest p99)."""
    rows = []
    for series in data.get("latency_hours", []):
        hours = series["hours"]
        top = max((h["p99_ms"] for h in hours if h["count"]), default=0) or 1
        bars = "".join(
            f'<i id="hour-{escape(series["kind"])}-{escape(series["rules"])}-{h["period_start_ms"]}" '
            f'style="height:{100 * h["p99_ms"] / top:.0f}%" title="{_utc(h["period_start_ms"])[11:]}: p50 '
            f'{_ms(h["p50_ms"], h["p50_over"])}, p99 {_ms(h["p99_ms"], h["p99_over"])}, {h["count"]:,} spans"></i>'
            if h["count"] else '<i class="none"></i>' for h in hours)
        name = SPAN_NAMES.get(series["kind"], escape(series["kind"]))
        rows.append(f'<p><small>{name} · {escape(series["rules"])} · highest p99 {_ms(top)}</small></p>'
                    f'<div class="spark">{bars}</div>')
    if not rows:
        return ""
    return (f'<div class="hours"><h2>p99 per hour, last {data["window_hours"]} hours</h2>{"".join(rows)}'
            f'<div class="axis">'
            f'<span>{_utc(data["since_ms"])}</span><span>now</span></div><p class="note">From each shard\'s hourly '
            "sums (an isolate's batch counts in the hour it arrived); a bar's tooltip gives its hour's p50 and p99."
            "</p></div>")


def dashboard_page(data: dict) -> str:
    """The whole page: per-rule counts, most-denied clients, outbox and flush, latency."""
    store = "HTTP sink (write-only)" if data["store"]["kind"] == "http" else escape(data["store"]["kind"].upper())
    top = (f'<header><h1>Tollgate</h1><span class="mut">{_utc(data["now_ms"])} · store: {store} · '
           f'<a href="{PAGE_PATH}">refresh</a> · <form method="post" action="{PAGE_PATH}/logout">'
           '<button type="submit" id="logout">Log out</button></form></span></header>')
    return _doc("Tollgate dashboard", f"<main>{top}{_rules(data)}{_clients(data)}{_outbox(data)}{_latency(data)}"
                                      "</main>", refresh_s=60)
