"""Who is calling, and what a bad credential looks like to the client."""
import hashlib
import hmac

import pytest

from src.tollgate.identity import (MAX_IDENTITY_LENGTH, Identity, IdentityError, client_key, identify,
                                   parse_source, parse_sources)

DEFAULT = parse_sources(["header:x-api-key", "bearer", "ip"])


def test_first_present_source_wins():
    h = {"x-api-key": "k1", "authorization": "Bearer t1", "cf-connecting-ip": "192.0.2.1"}
    assert identify(h, DEFAULT) == Identity("key", "k1")
    del h["x-api-key"]
    assert identify(h, DEFAULT) == Identity("key", "t1")
    del h["authorization"]
    assert identify(h, DEFAULT) == Identity("ip", "192.0.2.1")
    assert identify({}, DEFAULT) is None


def test_empty_values_are_absent_not_errors():
    h = {"x-api-key": "  ", "authorization": "Bearer ", "cf-connecting-ip": "192.0.2.9"}
    assert identify(h, DEFAULT) == Identity("ip", "192.0.2.9")


def test_other_authorization_schemes_are_skipped():
    assert identify({"authorization": "Basic dXNlcjpwdw==", "cf-connecting-ip": "::1"}, DEFAULT) == Identity("ip", "::1")
    assert identify({"authorization": "bearer   tok"}, DEFAULT) == Identity("key", "tok")


def test_ips_are_normalised():
    assert identify({"cf-connecting-ip": "2001:DB8:0:0::1"}, DEFAULT) == Identity("ip", "2001:db8::1")
    assert str(Identity.parse("ip:2001:0db8::0001")) == "ip:2001:db8::1"
    assert identify({"cf-connecting-ip": "::ffff:192.0.2.1"}, DEFAULT) == Identity("ip", "192.0.2.1")
    assert identify({"cf-connecting-ip": "[2001:db8::1]"}, DEFAULT) == Identity("ip", "2001:db8::1")
    with pytest.raises(IdentityError, match="zone"):
        identify({"cf-connecting-ip": "fe80::1%eth0"}, DEFAULT)


@pytest.mark.parametrize("headers, message", [
    ({"x-api-key": "a b"}, "header x-api-key contains a control or space character"),
    ({"x-api-key": "a\x00b"}, "control"),
    ({"x-api-key": "k" * (MAX_IDENTITY_LENGTH + 1)}, f"at most {MAX_IDENTITY_LENGTH}"),
    ({"authorization": "Bearer a\tb"}, "bearer token contains"),
    ({"cf-connecting-ip": "not-an-ip"}, "cf-connecting-ip is not an IP address"),
])
def test_bad_values_are_clear_client_errors(headers, message):
    with pytest.raises(IdentityError, match=message):
        identify(headers, DEFAULT)


def test_forwarded_for_only_when_trusted_and_leftmost():
    with pytest.raises(ValueError, match="trust_forwarded_for"):
        parse_source("xff")
    sources = parse_sources(["header:x-api-key", "xff"], trust_forwarded=True)
    h = {"x-forwarded-for": "203.0.113.7, 10.0.0.1, 10.0.0.2"}
    assert identify(h, sources) == Identity("ip", "203.0.113.7")
    with pytest.raises(IdentityError):
        identify({"x-forwarded-for": "unknown, 10.0.0.1"}, sources)


@pytest.mark.parametrize("spec", ["cookie", "header:", "header:bad name", "HEADER", 5])
def test_unknown_sources_are_refused(spec):
    with pytest.raises(ValueError, match="identity source|valid header"):
        parse_source(spec)


def test_source_names_are_case_insensitive_headers():
    assert parse_source("Header:X-API-Key").header == "x-api-key"
    assert str(parse_source("Header:X-API-Key")) == "header:x-api-key"


def test_identity_text_round_trips():
    for ident in (Identity("key", "abc"), Identity("ip", "192.0.2.1"), Identity("ip", "2001:db8::1")):
        assert Identity.parse(str(ident)) == ident
    assert Identity.parse("partner-key-123") == Identity("key", "partner-key-123")


def test_client_key_is_a_keyed_hash_of_the_identity():
    ident = Identity("key", "secret-api-key")
    key = client_key(b"s3cret", ident)
    assert key == hmac.new(b"s3cret", b"key:secret-api-key", hashlib.sha256).hexdigest()
    assert "secret-api-key" not in key and len(key) == 64
    assert client_key(b"other", ident) != key
    assert client_key(b"s3cret", Identity("ip", "secret-api-key")) != key
