"""The dashboard's session cookie: issued, checked, expired, forged (src/tollgate/session.py)."""
from __future__ import annotations

from src.tollgate.session import COOKIE_NAME, SESSION_TTL_S, cookie_value, issue, session_key, valid

KEY = session_key(b"identity-secret", b"admin-token")
NOW = 1_764_590_400_000


def test_a_fresh_cookie_is_valid_until_its_expiry_and_not_after():
    value = issue(KEY, NOW)
    assert valid(KEY, value, NOW)
    assert valid(KEY, value, NOW + SESSION_TTL_S * 1000 - 1000)
    assert not valid(KEY, value, NOW + SESSION_TTL_S * 1000)


def test_the_cookie_holds_no_secret_and_changes_with_either_secret():
    value = issue(KEY, NOW)
    assert "admin-token" not in value and "identity-secret" not in value
    assert not valid(session_key(b"identity-secret", b"rotated-token"), value, NOW)
    assert not valid(session_key(b"other-secret", b"admin-token"), value, NOW)


def test_forged_and_malformed_values_are_refused():
    version, expiry, mac = issue(KEY, NOW).split(".")
    later = int(expiry) + 86_400
    assert not valid(KEY, f"{version}.{later}.{mac}", NOW)               # extended expiry, old MAC
    assert not valid(KEY, f"{version}.{expiry}.{'0' * len(mac)}", NOW)
    far = issue(KEY, NOW + 10 * SESSION_TTL_S * 1000)                   # signed, but outlives one TTL
    assert not valid(KEY, far, NOW)
    for bad in (None, "", "v1", "v1..", "v2.1.ab", "v1.-5.ab", "v1.12x.ab", "x" * 500):
        assert not valid(KEY, bad, NOW), bad


def test_cookie_header_parsing():
    assert cookie_value(f"a=1; {COOKIE_NAME}=v1.2.ab; b=2") == "v1.2.ab"
    assert cookie_value(f'{COOKIE_NAME}="v1.2.ab"') == "v1.2.ab"
    assert cookie_value("a=1; b=2") is None
    assert cookie_value(None) is None
