"""Response headers and bodies that tell a client where it stands.

RateLimit-Policy and RateLimit follow draft-ietf-httpapi-ratelimit-headers-11:
Structured Field Lists (RFC 9651) of policy names with parameters. Only
enforcing rules are advertised: a shadow rule is an operator's experiment,
not a promise to the client. Retry-After (RFC 9110) is whole seconds, rounded
up, at least 1. A denial body is RFC 9457 problem+json with the draft's
`quota-exceeded` problem type.

With `partition_key = true` every item carries the draft's `pk` parameter:
the client's partition, so a caller can tell that two responses were limited
as the same client (an API key and the IP behind it are two partitions). It is
the first 96 bits of the client's keyed hash (the Durable Object name), as an
sf-binary, never the key itself.
"""
from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import Iterable, Sequence

from src.tollgate.decision import RuleResult
from src.tollgate.rules import Rule

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
TEMPORARY_REDUCED_CAPACITY = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
PROBLEM_JSON = "application/problem+json"


def sf_string(value: str) -> str:
    """An RFC 9651 sf-string: printable ASCII in quotes, with \\ and \" escaped."""
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if " " <= c <= "~" else "?" for c in out) + '"'


# Rule names and policies come from the config, so they are few and fixed:
# format each once, not on every request.
_name = lru_cache(maxsize=1024)(sf_string)


def partition_key(client_key: str) -> str:
    """The `pk` value for a client: RFC 9651 sf-binary of the first 12 bytes of its keyed hash."""
    return ":" + base64.b64encode(bytes.fromhex(client_key[:24])).decode() + ":"


def seconds_up(ms: int) -> int:
    return -(-ms // 1000)


def policy_header(rules: Iterable[Rule]) -> str:
    """`RateLimit-Policy`: each enforcing rule's quota and window; fixed per config, so cacheable.

    A GCRA rule of `count` per `period` with a burst is a bucket of `burst`
    units that refills completely in `burst * period / count`: advertised as
    that quota over that window ("20/second, burst 40" is `q=40;w=2`), so the
    policy states both the burst and the sustained rate.
    """
    return ", ".join(_policy_item(r) for r in rules if not r.shadow)


_last_policy: tuple = ((), "")


def _policy_of(rules: Sequence[Rule]) -> str:
    """`policy_header(rules)`, kept for the last rules tuple: a config resolves a route to the
    same tuple on every request, so the header is joined once, not per request."""
    global _last_policy
    last, policy = _last_policy
    if rules is last:
        return policy
    policy = policy_header(rules)
    if isinstance(rules, tuple):    # immutable (and held here, so its identity is never reused)
        _last_policy = (rules, policy)
    return policy


@lru_cache(maxsize=1024)
def _policy_item(rule: Rule) -> str:
    if rule.limit.algorithm == "concurrency":     # draft-11 quota unit: requests in flight, no window
        return f'{sf_string(rule.name)};q={rule.limit.count};qu="concurrent-requests"'
    return f"{sf_string(rule.name)};q={_quota(rule)};w={_window_s(rule)}"


def _quota(rule: Rule) -> int:
    return rule.limit.burst if rule.limit.algorithm == "gcra" else rule.limit.count


def _window_s(rule: Rule) -> int:
    lim = rule.limit
    if lim.algorithm == "gcra":
        return max(1, seconds_up(-(-lim.burst * lim.period_ms // lim.count)))
    return max(1, seconds_up(lim.period_ms))


def ratelimit_headers(rules: Sequence[Rule], results: Sequence[RuleResult], denied: bool,
                      retry_after_ms: int, legacy: bool = False, pk: str | None = None) -> list[tuple[str, str]]:
    """RateLimit-Policy, RateLimit, Retry-After on denial, X-RateLimit-* when `legacy`.

    `rules` and `results` are in the same order (the order of the decision); `pk`, when
    given (see `partition_key`), is added to every item of both fields.
    """
    items = []
    tightest = None
    suffix = f";pk={pk}" if pk else ""
    for rule, res in zip(rules, results):
        if rule.shadow:
            continue
        remaining = res.remaining if res.remaining > 0 else 0
        if rule.limit.algorithm == "concurrency":    # slots left; no reset time: a slot frees when a request ends
            items.append(f"{_name(rule.name)};r={remaining}{suffix}")
        else:
            items.append(f"{_name(rule.name)};r={remaining};t={-(-res.reset_ms // 1000)}{suffix}")
        if tightest is None or remaining < tightest[1].remaining:
            tightest = (rule, res)
    headers: list[tuple[str, str]] = []
    if items:
        if suffix:
            policy = ", ".join(_policy_item(r) + suffix for r in rules if not r.shadow)
        else:
            policy = _policy_of(rules)
        headers.append(("RateLimit-Policy", policy))
        headers.append(("RateLimit", ", ".join(items)))
    if denied:
        headers.append(("Retry-After", str(max(1, seconds_up(retry_after_ms)))))
    if legacy and tightest is not None:
        rule, res = tightest
        limit = rule.limit.burst if rule.limit.algorithm == "gcra" else rule.limit.count
        headers += [("X-RateLimit-Limit", str(limit)),
                    ("X-RateLimit-Remaining", str(max(0, res.remaining))),
                    ("X-RateLimit-Reset", str(seconds_up(res.reset_ms)))]  # delta seconds, as the drafts
    return headers


def problem(status: int, title: str, detail: str, type_: str = "about:blank",
            **extensions: object) -> tuple[bytes, list[tuple[str, str]]]:
    """An RFC 9457 problem document and its content type."""
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    body.update(extensions)
    return (json.dumps(body, separators=(",", ":")).encode(),
            [("Content-Type", PROBLEM_JSON), ("Cache-Control", "no-store")])


def quota_exceeded(rule: str, retry_after_ms: int, status: int = 429, concurrent: int | None = None,
                   **extensions: object) -> tuple[bytes, list[tuple[str, str]]]:
    """The 429 body: which rule said no and when to come back. `status` and `extensions`
    let /__tollgate/allow send the same document (with `allowed`, under its deny status);
    `concurrent`: the denying rule is a concurrency rule of that many slots."""
    seconds = max(1, seconds_up(retry_after_ms))
    detail = (f'Concurrency limit "{rule}" reached: {concurrent} requests of this client are in flight; '
              f"retry when one ends (in {seconds} s)." if concurrent is not None else
              f'Rate limit "{rule}" exceeded; retry in {seconds} s.')
    return problem(status, "Too Many Requests", detail,
                   QUOTA_EXCEEDED, rule=rule, retry_after=seconds, **extensions)


def overloaded(retry_after_s: int, status: int = 429, **extensions: object) -> tuple[bytes, list[tuple[str, str]]]:
    """The answer when the client's bucket is overloaded (it is being flooded): a denial, whatever
    on_error says, so a client cannot choose the failure mode by flooding its own bucket."""
    body, headers = problem(status, "Too Many Requests",
                            f"This client's rate limiter is overloaded by its own traffic; retry in {retry_after_s} s.",
                            TEMPORARY_REDUCED_CAPACITY, rule=None, retry_after=retry_after_s, **extensions)
    return body, headers + [("Retry-After", str(retry_after_s))]
