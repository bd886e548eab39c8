"""The pure half of signed identities: token parsing, the alg allow-list, exp/nbf/iss/aud
with an injected clock, and the identity-layer config with its field-path errors."""
import base64
import json

import pytest

from src.tollgate.config import ConfigError, parse_config
from src.tollgate.identity import UNVERIFIED_JWT, Identity, identify, parse_sources
from src.tollgate.identity_layers import known_key_hash
from src.tollgate.jwt_claims import ClaimRules, JwtError, check_claims, parse_token

NOW = 1_800_000_000_000
RULES = ClaimRules(("RS256", "HS256"), "iss-a", "aud-a", leeway_ms=5_000)


def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def tok(header=None, claims=None, sig="c2ln") -> str:
    return f'{b64(header or {"alg": "RS256", "kid": "k"})}.{b64(claims or {"sub": "a"})}.{sig}'


def reason(fn, *args) -> str:
    with pytest.raises(JwtError) as exc:
        fn(*args)
    return exc.value.reason


def test_parse_token_splits_and_keeps_what_the_signature_covers():
    t = parse_token(tok(), RULES.algorithms)
    assert (t.alg, t.kid, t.claims, t.signature) == ("RS256", "k", {"sub": "a"}, b"sig")
    assert t.signing_input == tok().rsplit(".", 1)[0].encode()


@pytest.mark.parametrize("token, why", [
    (tok({"alg": "none"}), "alg"), (tok({"alg": "NONE"}), "alg"), (tok({"alg": "ES512"}), "alg"),
    (tok({"alg": "RS256", "jku": "https://evil/keys"}), "header"), (tok({"alg": "RS256", "crit": ["x"]}), "header"),
    ("a.b", "malformed"), ("!!.e30.c2ln", "malformed"), (tok(sig="c2ln="), "malformed"),
    (b64([1]) + ".e30.c2ln", "malformed"), ("x" * 9000, "malformed"),
])
def test_parse_token_refuses_before_any_key_is_used(token, why):
    assert reason(parse_token, token, RULES.algorithms) == why


def test_claims_with_the_clock_passed_in():
    good = {"iss": "iss-a", "aud": ["x", "aud-a"], "exp": NOW / 1000 + 60, "nbf": NOW / 1000 - 1}
    check_claims(good, RULES, NOW)
    check_claims(dict(good, exp=NOW / 1000 - 4), RULES, NOW)             # within the leeway
    assert reason(check_claims, dict(good, exp=NOW / 1000 - 5), RULES, NOW) == "exp"
    assert reason(check_claims, dict(good, nbf=NOW / 1000 + 6), RULES, NOW) == "nbf"
    assert reason(check_claims, dict(good, aud="other"), RULES, NOW) == "aud"
    assert reason(check_claims, dict(good, iss="iss-b"), RULES, NOW) == "iss"
    assert reason(check_claims, {k: v for k, v in good.items() if k != "exp"}, RULES, NOW) == "exp"
    assert reason(check_claims, dict(good, exp="tomorrow"), RULES, NOW) == "exp"
    for absurd in (float("inf"), float("nan"), 10**30, True):
        assert reason(check_claims, dict(good, exp=absurd), RULES, NOW) == "exp"


def test_hostile_json_is_a_malformed_token_never_a_crash():
    deep = base64.urlsafe_b64encode(b"[" * 2500 + b"]" * 2500).rstrip(b"=").decode()   # within the length cap
    assert reason(parse_token, f"{b64({'alg': 'RS256'})}.{deep}.c2ln", RULES.algorithms) == "malformed"
    huge = base64.urlsafe_b64encode(b'{"exp": 1e400}').rstrip(b"=").decode()
    claims = parse_token(f"{b64({'alg': 'RS256'})}.{huge}.c2ln", RULES.algorithms).claims
    assert reason(check_claims, claims, RULES, NOW) == "exp"


def test_a_jwt_source_hands_the_token_over_unverified_and_only_as_such():
    sources = parse_sources(["jwt:sub", "ip"])
    assert str(sources[0]) == "jwt:sub"
    assert identify({"authorization": "Bearer a.b.c"}, sources) == Identity(UNVERIFIED_JWT, "a.b.c")
    assert identify({"authorization": "Basic x", "cf-connecting-ip": "192.0.2.1"}, sources) == Identity("ip", "192.0.2.1")


def test_known_key_hashes_are_keyed_and_never_the_bucket_name():
    from src.tollgate.identity import client_key
    assert known_key_hash(b"s", "k") != known_key_hash(b"t", "k") != known_key_hash(b"s", "j")
    assert known_key_hash(b"s", "k") != client_key(b"s", Identity("key", "k")) and "k" not in known_key_hash(b"s", "k")


def test_layer_config_errors_name_their_field():
    with pytest.raises(ConfigError) as exc:
        parse_config({"identity": ["jwt:sub"], "rules": [{"name": "r", "limit": "1/second", "key": "cookie"}],
                      "jwt": {"algorithms": ["HS256", "RS512"], "jwks": {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB",
                                                                                     "d": "secret"}]}},
                      "known_keys": {"unknown_keys": "allow", "cache_seconds": 0}, "plans": {"pro": {"rr": "blocked"}}})
    text = str(exc.value)
    for expected in ("TOLLGATE.jwt.algorithms: expected a non-empty list", "TOLLGATE.jwt.jwks.keys[0]: holds a private key",
                     "TOLLGATE.known_keys.unknown_keys: expected reject | per_ip",
                     "TOLLGATE.known_keys.cache_seconds", 'TOLLGATE.plans."pro".rr: no rule is named',
                     "TOLLGATE.rules[0].key:"):
        assert expected in text, text
    with pytest.raises(ConfigError, match="HS256 needs the name of the secret"):
        parse_config({"identity": ["jwt:sub"], "rules": [{"name": "r", "limit": "1/second"}],
                      "jwt": {"algorithms": ["HS256"]}})


def test_a_plan_selects_its_rules_and_a_per_client_override_beats_it():
    cfg = parse_config({"rules": [{"name": "r", "limit": "5/minute"}], "plans": {"pro": {"r": "50/minute"}},
                        "overrides": {"vip": {"r": "unlimited"}}})
    assert cfg.resolve(Identity("jwt", "a", "pro"), "GET", "/").rules[0].limit.count == 50
    assert cfg.resolve(Identity("jwt", "a", "gold"), "GET", "/").rules[0].limit.count == 5
    assert cfg.resolve(Identity("key", "vip", "pro"), "GET", "/").rules == ()
