"""What a client sees: draft-11 RateLimit headers, Retry-After and problem+json."""
import json

from src.tollgate.algorithms import Limit
from src.tollgate.decision import decide
from src.tollgate.headers import QUOTA_EXCEEDED, problem, quota_exceeded, ratelimit_headers, sf_string
from src.tollgate.rules import Rule

T0 = 1_764_000_000_000 - 1_764_000_000_000 % 86_400_000
RULES = (
    Rule("burst", Limit("gcra", 20, 1000, 40)),
    Rule("search", Limit("sliding_window", 100, 60_000, 100)),
    Rule("daily", Limit("fixed_window", 10_000, 86_400_000, 10_000), shadow=True),
)


def test_allowed_request_headers():
    d = decide(RULES, {}, 1, T0 + 500)
    h = dict(ratelimit_headers(RULES, d.results, False, 0))
    assert h["RateLimit-Policy"] == '"burst";q=40;w=2, "search";q=100;w=60'
    assert h["RateLimit"] == '"burst";r=39;t=1, "search";r=99;t=120'
    assert "Retry-After" not in h and "X-RateLimit-Limit" not in h
    assert "daily" not in h["RateLimit"]                    # shadow rules are not advertised


def test_denied_request_has_retry_after_rounded_up():
    rules = (Rule("burst", Limit("gcra", 1, 1500, 1)),)
    s = decide(rules, {}, 1, T0)
    d = decide(rules, s.new_states, 1, T0 + 1)
    h = ratelimit_headers(rules, d.results, True, d.retry_after_ms)
    assert ("Retry-After", "2") in h                        # 1499 ms -> 2 s
    assert ("RateLimit", '"burst";r=0;t=2') in h
    assert ("Retry-After", "1") in ratelimit_headers(rules, d.results, True, 1)   # never 0


def test_legacy_headers_describe_the_most_restrictive_rule():
    states = {}
    for i in range(98):                                    # 10/s: the burst rule never binds
        states.update(decide(RULES, states, 1, T0 + 100 * i).new_states)
    d = decide(RULES, states, 1, T0 + 9800)
    h = dict(ratelimit_headers(RULES, d.results, False, 0, legacy=True))
    # "search" has 1 left; a second one frees up 607 ms into the next minute (99 * 59393 <= 98 * 60000):
    # 60 s - 9.8 s + 0.607 s -> 51 s
    assert (h["X-RateLimit-Limit"], h["X-RateLimit-Remaining"], h["X-RateLimit-Reset"]) == ("100", "1", "51")


def test_sf_strings_are_quoted_and_escaped():
    assert sf_string('a"b\\c') == '"a\\"b\\\\c"'
    assert sf_string("tab\there") == '"tab?here"'


def test_quota_exceeded_problem_names_the_rule():
    body, headers = quota_exceeded("daily", 2500)
    doc = json.loads(body)
    assert doc["type"] == QUOTA_EXCEEDED == "https://iana.org/assignments/http-problem-types#quota-exceeded"
    assert doc["status"] == 429 and doc["rule"] == "daily" and doc["retry_after"] == 3
    assert '"daily"' in doc["detail"]
    assert ("Content-Type", "application/problem+json") in headers


def test_problem_extensions():
    body, _ = problem(400, "Bad identity", "header x-api-key is empty", field="x-api-key")
    assert json.loads(body) == {"type": "about:blank", "title": "Bad identity", "status": 400,
                                "detail": "header x-api-key is empty", "field": "x-api-key"}


def test_gcra_policy_states_burst_and_sustained_rate():
    from src.tollgate.headers import policy_header
    assert policy_header([Rule("a", Limit("gcra", 100, 60_000, 100))]) == '"a";q=100;w=60'
    assert policy_header([Rule("b", Limit("gcra", 20, 1000, 40))]) == '"b";q=40;w=2'
    assert policy_header([Rule("c", Limit("gcra", 3, 10_000, 1))]) == '"c";q=1;w=4'   # 3.33 s rounded up


def test_partition_key_is_an_sf_binary_of_the_client_hash_on_every_item():
    from src.tollgate.headers import partition_key
    key = "0123456789abcdef0123456789abcdef" * 2           # a client_key: HMAC-SHA256 hex
    pk = partition_key(key)
    assert pk == ":ASNFZ4mrze8BI0Vn:"                      # base64 of its first 12 bytes
    d = decide(RULES, {}, 1, T0)
    h = dict(ratelimit_headers(RULES, d.results, False, 0, pk=pk))
    assert all(item.endswith(";pk=" + pk) for item in h["RateLimit"].split(", "))
    assert all(item.endswith(";pk=" + pk) for item in h["RateLimit-Policy"].split(", "))
    assert "pk=" not in dict(ratelimit_headers(RULES, d.results, False, 0))["RateLimit"]
