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
    assert identify({"authorization": "Basic dXNlcjpwdw==", "cf-connecting-ip": "192.0.2.1"},
                    DEFAULT) == Identity("ip", "192.0.2.1")
    assert identify({"authorization": "bearer   tok"}, DEFAULT) == Identity("key", "tok")


def test_ips_are_normalised():
    assert identify({"cf-connecting-ip": "2001:DB8:0:0::1"}, EVERY_ADDRESS) == Identity("ip", "2001:db8::1")
    assert str(Identity.parse("ip:2001:0db8::0001", 128)) == "ip:2001:db8::1"
    assert identify({"cf-connecting-ip": "::ffff:192.0.2.1"}, DEFAULT) == Identity("ip", "192.0.2.1")
    assert identify({"cf-connecting-ip": "[2001:db8::1]"}, EVERY_ADDRESS) == Identity("ip", "2001:db8::1")
    with pytest.raises(IdentityError, match="zone"):
        identify({"cf-connecting-ip": "fe80::1%eth0"}, DEFAULT)


EVERY_ADDRESS = parse_sources(["ip"], ipv6_prefix=128)


def test_ipv6_clients_are_one_client_per_64_by_default():
    # a host picks any address in its /64 at will: rotating through them must not buy more quota
    one_host = {identify({"cf-connecting-ip": a}, DEFAULT)
                for a in ("2001:db8:1:2::1", "2001:db8:1:2:a:b:c:d", "2001:DB8:1:2:ffff:ffff:ffff:ffff")}
    assert one_host == {Identity("ip", "2001:db8:1:2::/64")}
    assert identify({"cf-connecting-ip": "2001:db8:1:3::1"}, DEFAULT) == Identity("ip", "2001:db8:1:3::/64")
    assert identify({"cf-connecting-ip": "192.0.2.1"}, DEFAULT) == Identity("ip", "192.0.2.1")   # v4: itself
    trusted = parse_sources(["xff"], trust_forwarded=True, ipv6_prefix=48)
    assert identify({"x-forwarded-for": "2001:db8:1:2::1, 10.0.0.1"}, trusted) == Identity("ip", "2001:db8:1::/48")


def test_an_ipv6_identity_is_written_as_an_address_or_its_group():
    # overrides and the admin API name the same client whichever way it is written
    assert Identity.parse("ip:2001:db8:1:2::99") == Identity("ip", "2001:db8:1:2::/64")
    assert Identity.parse("ip:2001:db8:1:2::/64") == Identity("ip", "2001:db8:1:2::/64")
    for text, prefix in (("ip:2001:db8::/48", 64), ("ip:192.0.2.0/24", 64), ("ip:2001:db8::1/128", 128)):
        with pytest.raises(IdentityError, match="is not a client"):
            Identity.parse(text, prefix)


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


@pytest.mark.parametrize("headers, message", [
    # workerd hands the Worker header bytes decoded as UTF-8, invalid bytes as U+FFFD
    ({"x-api-key": "caf\ufffd"}, "header x-api-key contains bytes that are not UTF-8"),
    ({"x-api-key": "caf\u00e9"}, r"header x-api-key contains a non-ASCII character \(U\+00E9\)"),
    ({"authorization": "Bearer tok\ufffd"}, "header authorization: bearer token contains bytes that are not UTF-8"),
    ({"cf-connecting-ip": "192.0.2.1\ufffd"}, "cf-connecting-ip is not an IP address"),
])
def test_bytes_an_identity_may_not_contain_are_named(headers, message):
    with pytest.raises(IdentityError, match=message):
        identify(headers, DEFAULT)
    with pytest.raises(IdentityError):        # overrides and the admin API refuse them too
        Identity.parse(next(iter(headers.values())).removeprefix("Bearer "))


@pytest.mark.parametrize("headers, where", [
    ({"x-api-key": "alice, bob"}, "header x-api-key"),          # two x-api-key lines, joined by the platform
    ({"authorization": "Bearer a, Bearer b"}, "header authorization"),
])
def test_a_repeated_identity_header_says_so(headers, where):
    with pytest.raises(IdentityError, match=f"{where}.* is repeated"):
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
    for ident in (Identity("key", "abc"), Identity("ip", "192.0.2.1"), Identity("ip", "2001:db8::/64")):
        assert Identity.parse(str(ident)) == ident
    assert Identity.parse("ip:2001:db8::1", 128) == Identity("ip", "2001:db8::1")
    assert Identity.parse("partner-key-123") == Identity("key", "partner-key-123")


def test_client_key_is_a_keyed_hash_of_the_identity():
    ident = Identity("key", "secret-api-key")
    key = client_key(b"s3cret", ident)
    assert key == hmac.new(b"s3cret", b"key:secret-api-key", hashlib.sha256).hexdigest()
    assert "secret-api-key" not in key and len(key) == 64
    assert client_key(b"other", ident) != key
    assert client_key(b"s3cret", Identity("ip", "secret-api-key")) != key


def test_client_key_asked_again_is_the_same_and_a_rotated_secret_still_names_another_bucket():
    """Keys are remembered per isolate (the HMAC is per request otherwise): a repeat must give
    the same name, a plan must not change it, and the previous secret must keep its own name."""
    ident = Identity("key", "k-1")
    first = client_key(b"new", ident)
    assert client_key(b"new", ident) == first == client_key(b"new", Identity("key", "k-1", plan="gold"))
    assert client_key(b"old", ident) == hmac.new(b"old", b"key:k-1", hashlib.sha256).hexdigest() != first
