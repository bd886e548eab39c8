"""The JWT signature check, the one platform-specific step of a signed identity.

On the edge (Pyodide), the Workers runtime's WebCrypto: `crypto.subtle.importKey`
then `crypto.subtle.verify` with HMAC (SHA-256), RSASSA-PKCS1-v1_5 (SHA-256) or
ECDSA (P-256, SHA-256), reached through `from js import crypto`
(developers.cloudflare.com/workers/runtime-apis/web-crypto/: the full
SubtleCrypto surface on the global `crypto.subtle`; an ECDSA signature there is
the raw r||s form, which is what JWS ES256 carries, RFC 7518 section 3.4).
On CPython (the local runtime), PyJWT's algorithm objects over `cryptography`
(pinned in requirements-dev.txt). Nothing here is hand-written cryptography;
both paths are given the same test vectors (tests/gateway/test_identity_layers.py).

Imported keys are cached per isolate: importing an RSA key costs more than
verifying with it.
"""
from __future__ import annotations

import json
import logging
from typing import Any

try:            # Pyodide: the Workers runtime's WebCrypto
    from js import Object as _JsObject
    from js import crypto as _js_crypto
    from pyodide.ffi import to_js as _to_js
except ImportError:     # CPython: PyJWT + cryptography, imported on first use
    _js_crypto = None

_IMPORT = {"HS256": {"name": "HMAC", "hash": "SHA-256"},
           "RS256": {"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"},
           "ES256": {"name": "ECDSA", "namedCurve": "P-256"}}
_VERIFY = {"HS256": {"name": "HMAC"}, "RS256": {"name": "RSASSA-PKCS1-v1_5"},
           "ES256": {"name": "ECDSA", "hash": "SHA-256"}}
log = logging.getLogger("tollgate.jwt")
_keys: dict[tuple[str, str], Any] = {}
MAX_KEYS = 256


async def verify_signature(alg: str, key: bytes | dict[str, str], signing_input: bytes, signature: bytes) -> bool:
    """True when `signature` is `alg`'s signature of `signing_input` under `key` (an HS256
    secret as bytes, or a public JWK). False for a wrong signature or a key that cannot
    be used; never raises for a bad signature."""
    if alg == "ES256" and len(signature) != 64:
        return False
    cache_key = (alg, key.hex() if isinstance(key, bytes) else json.dumps(key, sort_keys=True))
    try:
        if _js_crypto is not None:
            return await _verify_webcrypto(alg, key, cache_key, signing_input, signature)
        return _verify_library(alg, key, cache_key, signing_input, signature)
    except Exception as exc:  # a key the platform refuses (wrong curve, bad modulus): the token cannot verify
        log.warning("%s key could not be used to verify: %s: %s", alg, type(exc).__name__, exc)
        return False


def _js(value: Any) -> Any:
    return _to_js(value, dict_converter=_JsObject.fromEntries)


async def _verify_webcrypto(alg: str, key: Any, cache_key: tuple, signing_input: bytes, signature: bytes) -> bool:
    crypto_key = _keys.get(cache_key)
    if crypto_key is None:
        usages = _js(["verify"])
        if isinstance(key, bytes):
            crypto_key = await _js_crypto.subtle.importKey("raw", _js(key), _js(_IMPORT[alg]), False, usages)
        else:
            jwk = {k: v for k, v in key.items() if k in ("kty", "crv", "n", "e", "x", "y")}
            crypto_key = await _js_crypto.subtle.importKey("jwk", _js(jwk), _js(_IMPORT[alg]), False, usages)
        _remember(cache_key, crypto_key)
    ok = await _js_crypto.subtle.verify(_js(_VERIFY[alg]), crypto_key, _js(signature), _js(signing_input))
    return bool(ok)


def _verify_library(alg: str, key: Any, cache_key: tuple, signing_input: bytes, signature: bytes) -> bool:
    from jwt.algorithms import ECAlgorithm, HMACAlgorithm, RSAAlgorithm

    algorithm = {"HS256": HMACAlgorithm(HMACAlgorithm.SHA256), "RS256": RSAAlgorithm(RSAAlgorithm.SHA256),
                 "ES256": ECAlgorithm(ECAlgorithm.SHA256)}[alg]
    prepared = _keys.get(cache_key)
    if prepared is None:
        prepared = algorithm.prepare_key(key) if isinstance(key, bytes) else algorithm.from_jwk(json.dumps(key))
        _remember(cache_key, prepared)
    return bool(algorithm.verify(signing_input, prepared, signature))


def _remember(cache_key: tuple, prepared: Any) -> None:
    if len(_keys) >= MAX_KEYS:
        _keys.clear()
    _keys[cache_key] = prepared
