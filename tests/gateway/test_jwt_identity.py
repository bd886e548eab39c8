"""Signed identities (issue 11), black-box on both runtimes: the same JWT vectors must get
the same answers from WebCrypto (real workerd, Pyodide) and PyJWT (the local runtime)."""
from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.gateway.support import SECRETS, call, problem_of, run_scenario

ISSUER, AUDIENCE, HS_SECRET = "https://auth.example.test", "tollgate-api", "hs256-test-secret-0123456789abcdef"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)   # another issuer's key


def public_jwk(key, kid: str) -> dict:
    algorithm = pyjwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else pyjwt.algorithms.ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    jwk["kid"] = kid
    return jwk


TOLLGATE = {
    "identity": ["jwt:sub"],
    "rules": [{"name": "hourly", "limit": "3/hour", "algorithm": "fixed_window"}],
    "jwt": {"algorithms": ["HS256", "RS256", "ES256"], "issuer": ISSUER, "audience": AUDIENCE,
            "secret": "JWT_SECRET", "jwks": {"keys": [public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")]}},
    "plans": {"pro": {"hourly": "10/hour"}},
}


def token(sub: str = "alice", alg: str = "RS256", key=None, kid: str | None = None, **claims) -> str:
    now = int(time.time())
    body = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    if key is None:
        key = {"HS256": HS_SECRET, "RS256": RSA_KEY, "ES256": EC_KEY}[alg]
    kid = kid if kid is not None else {"RS256": "rsa-1", "ES256": "ec-1"}.get(alg)
    return pyjwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


def unsigned(sub: str = "alice") -> str:
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()   # noqa: E731
    return f'{part({"alg": "none", "typ": "JWT"})}.{part({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": 2**31})}.'


def tampered(tok: str) -> str:
    head, payload, sig = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


VECTORS = [   # (name, token, expected status, expected reason)
    ("valid HS256", lambda: token(alg="HS256"), 201, None),
    ("valid RS256", lambda: token(alg="RS256"), 201, None),
    ("valid ES256", lambda: token(alg="ES256"), 201, None),
    ("expired", lambda: token(exp=int(time.time()) - 120), 401, "exp"),
    ("not yet valid", lambda: token(nbf=int(time.time()) + 3600), 401, "nbf"),
    ("wrong audience", lambda: token(aud="someone-else"), 401, "aud"),
    ("wrong issuer", lambda: token(iss="https://evil.example"), 401, "iss"),
    ("wrong signature RS256", lambda: tampered(token(alg="RS256")), 401, "signature"),
    ("wrong signature ES256", lambda: tampered(token(alg="ES256")), 401, "signature"),
    ("wrong HS256 secret", lambda: token(alg="HS256", key="not-the-secret-but-long-enough-000"), 401, "signature"),
    ("alg none", unsigned, 401, "alg"),
    ("key from another issuer (unknown kid)", lambda: token(key=OTHER_RSA, kid="other-1"), 401, "key"),
    ("key from another issuer (our kid)", lambda: token(key=OTHER_RSA, kid="rsa-1"), 401, "signature"),
    ("not a JWT (no other source: not identified)", lambda: "just-an-opaque-token", 401, None),
    ("three parts, not base64url", lambda: "a.b!.c", 401, "malformed"),
    ("no expiry", lambda: token(exp=None), 401, "exp"),
]


def test_jwt_vectors_get_the_same_answers_on_both_runtimes(tmp_path, runtime):
    async def scenario(edge, origin, http):
        seen = {}
        for name, make, want_status, want_reason in VECTORS:
            status, headers, body = await call(http, "GET", f"{edge.url}/v1/x",
                                               headers={"Authorization": f"Bearer {make()}"})
            reason = problem_of(status, headers, body).get("reason") if status >= 400 else None
            seen[name] = (status, reason)
            if status == 401 and reason is not None:
                assert "invalid_token" in headers.get("WWW-Authenticate", ""), name
        assert seen == {name: (s, r) for name, _, s, r in VECTORS}
        assert origin.count() == 3
    run_scenario(tmp_path, TOLLGATE, scenario, secrets={**SECRETS, "JWT_SECRET": HS_SECRET})


def test_the_subject_is_the_client_and_a_plan_claim_switches_its_limits(tmp_path, runtime):
    async def scenario(edge, origin, http):
        async def status_of(tok):
            status, headers, _ = await call(http, "GET", f"{edge.url}/v1/x", headers={"Authorization": f"Bearer {tok}"})
            return status, headers.get("RateLimit-Policy")
        free = [await status_of(token("carol", alg="ES256")) for _ in range(4)]
        assert [s for s, _ in free] == [201, 201, 201, 429]
        assert free[0][1] == '"hourly";q=3;w=3600'
        # a new token for the same subject is the same client (still denied); RS256 or ES256 alike
        assert (await status_of(token("carol", alg="RS256")))[0] == 429
        pro = [await status_of(token("dave", alg="RS256", plan="pro")) for _ in range(4)]
        assert [s for s, _ in pro] == [201] * 4 and pro[0][1] == '"hourly";q=10;w=3600'
        # an unknown plan gets the default rules, never none
        assert (await status_of(token("erin", plan="platinum")))[1] == '"hourly";q=3;w=3600'
        # the admin API names a token's client by its subject
        status, _, body = await call(http, "GET", f"{edge.url}/__tollgate/admin/clients/jwt:carol",
                                     headers={"Authorization": f"Bearer {SECRETS['ADMIN_TOKEN']}"})
        hourly = json.loads(body)["rules"]["hourly"]
        assert status == 200 and (hourly["allowed"], hourly["denied"]) == (3, 2), hourly
    run_scenario(tmp_path, TOLLGATE, scenario, secrets={**SECRETS, "JWT_SECRET": HS_SECRET})


class JwksServer:
    """A JWKS endpoint on a free loopback port, counting its fetches."""

    def __init__(self, keys: list[dict]) -> None:
        import http.server
        import threading
        owner = self
        self.fetches = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):   # noqa: N802
                owner.fetches += 1
                body = json.dumps({"keys": keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "JwksServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_jwks_url_is_fetched_once_and_an_unknown_kid_cannot_make_it_refetch(tmp_path, runtime):
    with JwksServer([public_jwk(EC_KEY, "url-ec")]) as jwks_server:
        config = {"identity": ["jwt:sub"], "rules": TOLLGATE["rules"],
                  "jwt": {"algorithms": ["ES256"], "jwks_url": jwks_server.url, "jwks_cache_seconds": 600}}

        async def scenario(edge, origin, http):
            for i in range(5):
                status, _, _ = await call(http, "GET", f"{edge.url}/v1/x",
                                          headers={"Authorization": f"Bearer {token(f'u{i}', alg='ES256', kid='url-ec')}"})
                assert status == 201
            for i in range(5):     # made-up kids: refused, and no fetch per request (30 s floor)
                status, headers, body = await call(http, "GET", f"{edge.url}/v1/x", headers={
                    "Authorization": f"Bearer {token('m', alg='ES256', key=ec.generate_private_key(ec.SECP256R1()), kid=f'x{i}')}"})
                assert problem_of(401, headers, body)["reason"] == "key"
            assert jwks_server.fetches == 1, jwks_server.fetches   # one fetch; made-up kids cost none
        run_scenario(tmp_path, config, scenario)


def test_a_rule_counted_per_token_subject_while_the_client_is_its_address(tmp_path, runtime):
    config = {"identity": ["ip"], "jwt": {**TOLLGATE["jwt"]},
              "rules": [{"name": "per_user", "limit": "2/day", "algorithm": "fixed_window", "key": "jwt:sub"}]}

    async def scenario(edge, origin, http):
        async def status(tok):
            return (await call(http, "GET", f"{edge.url}/v1/x", headers={"Authorization": f"Bearer {tok}"}))[0]
        assert [await status(token("alice", alg="ES256")) for _ in range(3)] == [201, 201, 429]
        assert await status(token("bob", alg="RS256")) == 201               # another subject, same address
        forged = tampered(token("carol", alg="RS256"))
        # a forged token is no new subject: it counts in the address's shared unknown client
        assert [await status(forged) for _ in range(3)] == [201, 201, 429]
        assert await status(tampered(token("dave", alg="RS256"))) == 429
    run_scenario(tmp_path, config, scenario, secrets={**SECRETS, "JWT_SECRET": HS_SECRET})
