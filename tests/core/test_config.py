"""[vars.TOLLGATE]: the issue's example parses, and every mistake is named with its field path."""
import tomllib

import pytest

from src.tollgate.config import ConfigError, parse_config
from src.tollgate.identity import Identity

EXAMPLE = tomllib.loads('''
[vars]
ORIGIN_URL = "https://api.example.com"

[vars.TOLLGATE]
identity = ["header:x-api-key", "bearer", "ip"]

[[vars.TOLLGATE.rules]]
name = "burst"
limit = "20/second"
burst = 40

[[vars.TOLLGATE.rules]]
name = "search"
limit = "100/minute"
algorithm = "sliding_window"
match = { methods = ["GET", "POST"], paths = ["/v1/search*"] }

[[vars.TOLLGATE.rules]]
name = "daily"
limit = "10000/day"
algorithm = "fixed_window"
shadow = true
on_error = "closed"

[vars.TOLLGATE.costs]
"POST /v1/search" = 5

[vars.TOLLGATE.overrides."partner-key-123"]
daily = "unlimited"
burst = "100/second"

[vars.TOLLGATE.overrides."ip:192.0.2.66"]
search = "blocked"
''')["vars"]["TOLLGATE"]

ANON = Identity("key", "someone")


def errors_of(raw) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    return err.value.errors


def with_rule(**rule):
    return {"rules": [{"name": "r", "limit": "10/second", **rule}]}


def test_the_issue_example_parses():
    cfg = parse_config(EXAMPLE)
    assert [r.name for r in cfg.rules] == ["burst", "search", "daily"]
    burst, search, daily = cfg.rules
    assert (burst.limit.algorithm, burst.limit.count, burst.limit.period_ms, burst.limit.burst) == ("gcra", 20, 1000, 40)
    assert search.limit.algorithm == "sliding_window" and search.limit.burst == 100
    assert daily.shadow and daily.on_error == "closed" and burst.on_error == "open"
    assert [str(s) for s in cfg.identity] == ["header:x-api-key", "bearer", "ip"]
    assert cfg.legacy_headers is False


def test_resolve_picks_matching_rules_and_route_cost():
    cfg = parse_config(EXAMPLE)
    res = cfg.resolve(ANON, "POST", "/v1/search")
    assert [r.name for r in res.rules] == ["burst", "search", "daily"] and res.cost == 5
    res = cfg.resolve(ANON, "GET", "/v1/items")
    assert [r.name for r in res.rules] == ["burst", "daily"] and res.cost == 1 and res.blocked_by is None
    assert cfg.resolve(None, "GET", "/v1/search?q=1").cost == 1


def test_overrides_replace_drop_and_block():
    cfg = parse_config(EXAMPLE)
    res = cfg.resolve(Identity("key", "partner-key-123"), "GET", "/v1/x")
    assert [r.name for r in res.rules] == ["burst"]                      # daily is unlimited
    assert (res.rules[0].limit.count, res.rules[0].limit.burst) == (100, 200)   # burst ratio kept
    # "blocked" refuses the client outright, also where the named rule does not match
    blocked = cfg.resolve(Identity("ip", "192.0.2.66"), "GET", "/v1/x")
    assert blocked.blocked_by == "search" and blocked.rules == ()
    # the base rules are untouched for everyone else
    assert cfg.resolve(ANON, "GET", "/v1/x").rules[0].limit.count == 20


def test_issue_typo_message_exactly():
    raw = {"rules": [{"name": "a", "limit": "1/second"}, {"name": "b", "limit": "100/minnute"}]}
    assert errors_of(raw) == ['TOLLGATE.rules[1].limit: "100/minnute" is not a rate '
                              '(expected N/second|minute|hour|day or "N per K seconds") (did you mean "100/minute"?)']


def test_every_mistake_is_reported_at_once():
    raw = {
        "identity": ["header:x-api-key", "cookie", "xff"],
        "legacy_headers": "yes",
        "rules": [
            {"name": "burst", "limit": "20/second", "burst": 0},
            {"name": "burst", "limit": "1/second"},
            {"name": "w", "limit": "5/minute", "algorithm": "sliding-window", "burst": 3},
            {"name": "s", "limit": "5/minute", "shadow": "true", "on_error": "maybe", "algoritm": "gcra"},
            {"name": "m", "limit": "5/minute", "match": {"methods": ["GET/"], "paths": ["v1/*"], "hosts": []}},
        ],
        "costs": {"POST /v1/search": 0, "FE(TCH /x": 2, "POST v1": 1},
        "overrides": {"partner": {"dayly": "unlimited", "burst": "lots"}},
        "rulez": [],
    }
    errs = errors_of(raw)
    expected = [
        "TOLLGATE.rulez: unknown setting",
        "TOLLGATE.legacy_headers: expected true or false",
        'TOLLGATE.identity[1]: "cookie" is not an identity source',
        "TOLLGATE.identity[2]: \"xff\" trusts X-Forwarded-For",
        "TOLLGATE.rules[0].burst: expected a positive integer, got 0",
        'TOLLGATE.rules[1].name: "burst" is already the name of another rule',
        "TOLLGATE.rules[2].algorithm: 'sliding-window' is not an algorithm",
        'did you mean "sliding_window"?',
        "TOLLGATE.rules[3].algoritm: unknown setting (did you mean \"algorithm\"?)",
        "TOLLGATE.rules[3].shadow: expected true or false, got 'true'",
        "TOLLGATE.rules[3].on_error: expected open | closed, got 'maybe'",
        "TOLLGATE.rules[4].match.hosts: unknown setting",
        "TOLLGATE.rules[4].match.methods: 'GET/' is not an HTTP method",
        "TOLLGATE.rules[4].match.paths: 'v1/*' must start with /",
        'TOLLGATE.costs."POST /v1/search": expected a positive integer cost, got 0',
        'TOLLGATE.costs."FE(TCH /x": \'FE(TCH\' is not an HTTP method',
        'TOLLGATE.costs."POST v1": expected "METHOD /path*"',
        'TOLLGATE.overrides."partner".dayly: no rule is named \'dayly\'',
        'TOLLGATE.overrides."partner".burst: "lots" is not a rate',
    ]
    joined = "\n".join(errs)
    for piece in expected:
        assert piece in joined, piece
    # one line per mistake: nothing swallowed, nothing reported twice
    assert len(errs) == len(set(errs))


@pytest.mark.parametrize("raw, piece", [
    ("rules", "TOLLGATE: expected a table"),
    ({}, "TOLLGATE.rules: expected at least one"),
    ({"rules": []}, "TOLLGATE.rules: expected at least one"),
    ({"rules": {"name": "x"}}, "TOLLGATE.rules: expected a list of tables"),
    ({"rules": ["x"]}, "TOLLGATE.rules[0]: expected a table"),
    (with_rule(limit=None), "TOLLGATE.rules[0].limit: None is not a rate"),
    ({"rules": [{"name": "r"}]}, "TOLLGATE.rules[0].limit: missing"),
    ({"rules": [{"name": "has space", "limit": "1/second"}]}, "TOLLGATE.rules[0].name: expected 1-64 letters"),
    (with_rule(match=["GET"]), "TOLLGATE.rules[0].match: expected a table"),
    (with_rule(match={"methods": "GET"}), "TOLLGATE.rules[0].match.methods: expected a list"),
    ({**with_rule(), "identity": "ip"}, "TOLLGATE.identity: expected a non-empty list"),
    ({**with_rule(), "identity": []}, "TOLLGATE.identity: expected a non-empty list"),
    ({**with_rule(), "costs": {"/x": True}}, 'TOLLGATE.costs."/x": expected a positive integer cost'),
    ({**with_rule(), "overrides": {"k": "unlimited"}}, 'TOLLGATE.overrides."k": expected a table'),
    ({**with_rule(), "overrides": {"ip:999.1.1.1": {"r": "blocked"}}}, 'TOLLGATE.overrides."ip:999.1.1.1": ip is not an IP'),
    ({**with_rule(), "overrides": {"k": {"r": {"limit": "1/second", "burst": 0}}}}, 'TOLLGATE.overrides."k".r.burst'),
    ({**with_rule(), "trust_forwarded_for": 1}, "TOLLGATE.trust_forwarded_for: expected true or false"),
    ({**with_rule(), "partition_key": "yes"}, "TOLLGATE.partition_key: expected true or false"),
    ({**with_rule(), "ipv6_prefix": 8}, "TOLLGATE.ipv6_prefix: expected a prefix length 16..128"),
    ({**with_rule(), "ipv6_prefix": "64"}, "TOLLGATE.ipv6_prefix: expected a prefix length 16..128"),
    ({**with_rule(), "overrides": {"ip:2001:db8::/48": {"r": "blocked"}}},
     'TOLLGATE.overrides."ip:2001:db8::/48": ip "2001:db8::/48" is not a client: a client is an IPv4 address '
     "or an IPv6 /64 network"),
])
def test_each_mistake_names_its_field(raw, piece):
    errs = errors_of(raw)
    assert any(piece in e for e in errs), errs


def test_xff_needs_trust_and_legacy_headers_flag():
    cfg = parse_config({**with_rule(), "identity": ["xff", "ip"], "trust_forwarded_for": True, "legacy_headers": True})
    assert [s.kind for s in cfg.identity] == ["xff", "ip"] and cfg.legacy_headers


def test_an_ipv6_override_covers_the_clients_whole_group():
    from src.tollgate.identity import identify
    cfg = parse_config({**with_rule(), "identity": ["ip"], "overrides": {"ip:2001:db8:1:2::5": {"r": "blocked"}}})
    neighbour = identify({"cf-connecting-ip": "2001:db8:1:2:dead::beef"}, cfg.identity)
    assert cfg.resolve(neighbour, "GET", "/").blocked_by == "r"
    elsewhere = identify({"cf-connecting-ip": "2001:db8:1:3::5"}, cfg.identity)
    assert cfg.resolve(elsewhere, "GET", "/").blocked_by is None
    apart = parse_config({**with_rule(), "identity": ["ip"], "ipv6_prefix": 128,
                          "overrides": {"ip:2001:db8:1:2::5": {"r": "blocked"}}})
    assert apart.resolve(identify({"cf-connecting-ip": "2001:db8:1:2::6"}, apart.identity), "GET", "/").blocked_by is None
    assert apart.resolve(identify({"cf-connecting-ip": "2001:db8:1:2::5"}, apart.identity), "GET", "/").blocked_by == "r"


def test_override_table_with_burst_on_gcra():
    cfg = parse_config({**with_rule(burst=20), "overrides": {"vip": {"r": {"limit": "50/second", "burst": 80}}}})
    limit = cfg.resolve(Identity.parse("vip"), "GET", "/").rules[0].limit
    assert (limit.count, limit.burst) == (50, 80)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False),
                     st.sampled_from(["", "ip", "xff", "bearer", "header:x-k", "gcra", "sliding_window",
                                      "fixed_window", "open", "closed", "unlimited", "blocked", "10/second",
                                      "5 per 2 seconds", "/v1/*", "GET", "POST /x", "burst", "r"]),
                     st.text(max_size=8))
_keys = st.sampled_from(["identity", "rules", "costs", "overrides", "name", "limit", "algorithm", "burst",
                         "match", "methods", "paths", "shadow", "on_error", "trust_forwarded_for",
                         "legacy_headers", "max_cost", "ipv6_prefix", "partition_key", "r", "ip:192.0.2.1", "POST /x", "zzz"])
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_keys, inner, max_size=5)),
                       max_leaves=25)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_any_garbage_is_a_config_error_never_a_crash(raw):
    try:
        parse_config(raw)
    except ConfigError as err:
        assert err.errors and all(e.startswith("TOLLGATE") for e in err.errors)


def test_any_rfc9110_method_token_may_be_matched_and_priced():
    config = parse_config({"rules": [{"name": "dav", "limit": "10/minute",
                                      "match": {"methods": ["PURGE", "propfind", "M-SEARCH"]}}],
                           "costs": {"PURGE /cache/*": 3}})
    rule = config.rules[0]
    assert rule.match.methods == {"PURGE", "PROPFIND", "M-SEARCH"}
    assert rule.matches("PROPFIND", "/x") and not rule.matches("GET", "/x")
    assert config.cost_for("PURGE", "/cache/a") == 3


def test_a_route_cost_no_rule_could_ever_admit_is_a_config_error():
    errs = errors_of({"rules": [{"name": "burst", "limit": "20/second", "burst": 5},
                                {"name": "search", "limit": "100/minute", "match": {"paths": ["/v1/search*"]}},
                                {"name": "other", "limit": "2/minute", "match": {"paths": ["/v2/*"]}},
                                {"name": "dry", "limit": "1/minute", "shadow": True}],
                      "costs": {"POST /v1/search": 10, "/v3/*": 4},
                      "overrides": {"small": {"search": "3/minute"}}})
    joined = "\n".join(errs)
    assert 'TOLLGATE.costs."POST /v1/search": cost 10 exceeds rule "burst", which admits at most 5' in joined
    assert 'cost 10 exceeds rule "search" for override "key:small", which admits at most 3' in joined
    assert '"other"' not in joined and '"dry"' not in joined, "no overlap / shadow: not an error"
    assert '"/v3/*"' not in joined, "4 fits every rule that meets /v3/*"


def test_a_rate_typo_in_a_rule_gets_a_did_you_mean():
    assert ('TOLLGATE.rules[0].limit: "100/minnute" is not a rate (expected N/second|minute|hour|day or '
            '"N per K seconds") (did you mean "100/minute"?)') in errors_of(with_rule(limit="100/minnute"))
