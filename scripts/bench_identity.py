#!/usr/bin/env python3
"""scripts/bench identity: what each identity layer (issue 11) costs per request on real workerd.

Each subject is the dry-run bundle on `wrangler dev` (scripts/dev --workerd) deciding
`/__tollgate/allow` with one configuration; the figures are the CPU time of the workerd
process running the Worker and its Durable Objects (as `scripts/bench workerd`) per
request over --requests requests on 8 connections, and the mean wall time of one request
sent alone (--sequential requests on one connection), which shows a second RPC's wait.

  no layers                  an API key, one rule: the baseline
  known key (cached)         + known_keys: the key's D1 answer cached in the isolate
  unknown keys (D1 each)     + known_keys per_ip, a new random key every request: a D1 read each
  JWT HS256 (cached)         jwt:sub, the same tokens again: the signature checked once per token
  JWT RS256 (new token)      a new token every request: one WebCrypto RSA verify each
  JWT ES256 (new token)      the same with ECDSA P-256
  per-rule key + IP          a per-key rule and a `key = "ip"` rule: two buckets, two RPCs

    scripts/bench identity [--requests 1000] [--sequential 200] [--rounds 1]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.bench_workerd import cpu_seconds, end, start, user_worker_pid, workerd_cmd  # noqa: E402
from scripts.workerd import dry_run  # noqa: E402
from src.localedge.derived import KEPT, derived_config  # noqa: E402

PY = sys.executable
KEYS = 10
HS_SECRET = "bench-jwt-secret-0123456789abcdef0123"
SECRETS = {"ADMIN_TOKEN": "bench-admin", "ALLOW_TOKEN": "bench-allow", "IDENTITY_SECRET": "bench-secret",
           "JWT_SECRET": HS_SECRET}
RULE = {"name": "wide", "limit": "100000/second"}
KEYFILE = Path(tempfile.gettempdir()) / "tollgate-bench-identity-signing-keys.pem"   # the load generator signs with these


def signing_keys():
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP256R1())


def jwks(rsa_key, ec_key) -> dict:
    import jwt
    keys = []
    for kid, alg, key in (("r1", jwt.algorithms.RSAAlgorithm, rsa_key), ("e1", jwt.algorithms.ECAlgorithm, ec_key)):
        jwk = json.loads(alg.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid})
    return {"keys": keys}


def subjects(public_jwks: dict) -> dict[str, tuple[dict, str]]:
    """name -> ([vars.TOLLGATE], what the load generator sends)."""
    keyed = {"identity": ["header:x-api-key"], "rules": [RULE]}
    known = {**keyed, "known_keys": {"unknown_keys": "per_ip", "cache_seconds": 60}}
    jwt_cfg = {"identity": ["jwt:sub"], "rules": [RULE],
               "jwt": {"algorithms": ["HS256", "RS256", "ES256"], "secret": "JWT_SECRET", "jwks": public_jwks}}
    per_rule = {"identity": ["header:x-api-key"],
                "rules": [{"name": "per_key", "limit": "100000/second"},
                          {"name": "per_ip", "limit": "100000/second", "key": "ip"}]}
    return {"no layers": (keyed, "keys"), "known key (cached)": (known, "known"),
            "unknown keys (D1 each)": (known, "random"), "JWT HS256 (cached)": (jwt_cfg, "hs256"),
            "JWT RS256 (new token)": (jwt_cfg, "rs256-fresh"), "JWT ES256 (new token)": (jwt_cfg, "es256-fresh"),
            "per-rule key + IP": (per_rule, "keys")}


def add_known_keys(config: Path, state: Path) -> None:
    for i in range(KEYS):
        subprocess.run([PY, str(ROOT / "scripts" / "keys"), "--config", str(config), "--persist-to",
                        str(state / "workerd" / "persist"), "add", f"bench-{i}"], check=True, capture_output=True)


def load(url: str, mode: str, requests: int, connections: int) -> dict:
    done = subprocess.run([PY, __file__, "--loadgen", url, mode, str(requests), str(connections), str(KEYFILE)],
                          capture_output=True, text=True, timeout=900)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"load generator failed: {done.stdout}\n{done.stderr}")
    return json.loads(line[7:])


def loadgen(url: str, mode: str, requests: int, connections: int, keyfile: Path) -> None:
    """Own process: the headers for `mode` made first, then `requests` GETs; prints RESULT json."""
    import asyncio
    import secrets

    import aiohttp
    import jwt
    rsa_key, ec_key = (None, None)
    if mode.endswith("fresh"):
        from cryptography.hazmat.primitives import serialization
        pems = keyfile.read_bytes().split(b"\n--SPLIT--\n")
        rsa_key, ec_key = (serialization.load_pem_private_key(p, None) for p in pems)
    now = int(time.time())

    def headers(i: int) -> dict[str, str]:
        if mode in ("keys", "known"):
            return {"X-Api-Key": f"bench-{i % KEYS}"}
        if mode == "random":
            return {"X-Api-Key": "r-" + secrets.token_hex(10)}
        claims = {"sub": f"user-{i % KEYS}", "exp": now + 3600}
        if mode == "hs256":
            return {"Authorization": "Bearer " + jwt.encode(claims, HS_SECRET, algorithm="HS256")}
        key, alg, kid = (rsa_key, "RS256", "r1") if mode.startswith("rs") else (ec_key, "ES256", "e1")
        return {"Authorization": "Bearer " + jwt.encode({**claims, "jti": str(i)}, key, algorithm=alg,
                                                        headers={"kid": kid})}
    sent = [headers(i) for i in range(requests)]

    async def main() -> dict:
        todo, statuses, spent = iter(sent), {}, []

        async def worker(http: aiohttp.ClientSession) -> None:
            for h in todo:
                t0 = time.perf_counter()
                async with http.get(url, headers=h) as r:
                    await r.read()
                spent.append(time.perf_counter() - t0)
                statuses[r.status] = statuses.get(r.status, 0) + 1
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as http:
            await asyncio.gather(*(worker(http) for _ in range(connections)))
        return {"statuses": statuses, "mean_ms": statistics.mean(spent) * 1000}
    print("RESULT " + json.dumps(asyncio.run(main())), flush=True)


def measure(name: str, tollgate: dict, mode: str, work: Path, bundle: Path, args: argparse.Namespace) -> dict:
    config = derived_config(work / f"cfg-{name.split()[0]}-{mode}", {"TOLLGATE": tollgate}, SECRETS,
                            name="tollgate-bench", keep=KEPT + ("d1_databases",))
    state = work / f"state-{mode}-{len(name)}"
    proc, url = start(workerd_cmd(config, state, "none", bundle))
    try:
        if mode == "known":
            add_known_keys(config, state)
        url += "/__tollgate/allow"
        load(url, mode, 200, 8)                                    # warm-up: caches, objects, imports
        pid = user_worker_pid(proc.pid)
        before = cpu_seconds(pid)
        result = load(url, mode, args.requests, 8)
        cpu = (cpu_seconds(pid) - before) * 1000 / args.requests
        alone = load(url, mode, args.sequential, 1)
        if set(result["statuses"]) != {"200"}:
            raise RuntimeError(f"{name}: not every request was admitted: {result['statuses']}")
        return {"cpu_ms": cpu, "wall_ms": alone["mean_ms"]}
    finally:
        end(proc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench identity", description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--sequential", type=int, default=200)
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args(argv)
    from cryptography.hazmat.primitives import serialization
    rsa_key, ec_key = signing_keys()
    pem = lambda k: k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,  # noqa: E731
                                    serialization.NoEncryption())
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-identity-") as tmp:
        work = Path(tmp)
        KEYFILE.write_bytes(pem(rsa_key) + b"\n--SPLIT--\n" + pem(ec_key))
        try:
            bundle, _ = dry_run.build(work / "bundle")
            for n in range(args.rounds):
                for name, (tollgate, mode) in subjects(jwks(rsa_key, ec_key)).items():
                    got = measure(name, tollgate, mode, work / f"r{n}", bundle, args)
                    rows.setdefault(name, []).append(got)
                    print(f"  round {n + 1}: {name:<26} {got['cpu_ms']:.3f} ms CPU, {got['wall_ms']:.2f} ms alone",
                          flush=True)
        finally:
            KEYFILE.unlink(missing_ok=True)
    base = statistics.median(r["cpu_ms"] for r in rows["no layers"])
    base_wall = statistics.median(r["wall_ms"] for r in rows["no layers"])
    print(f"\nworkerd 1.20261117.1, Pyodide 314.0.6; {args.requests} requests on 8 connections, "
          f"{args.sequential} alone; median of {args.rounds} round(s)")
    print(f"{'subject':<28}{'CPU ms/request':>16}{'+ vs none':>11}{'alone ms':>10}{'+ vs none':>11}")
    for name, got in rows.items():
        cpu, wall = statistics.median(r["cpu_ms"] for r in got), statistics.median(r["wall_ms"] for r in got)
        print(f"{name:<28}{cpu:>16.3f}{cpu - base:>+11.3f}{wall:>10.2f}{wall - base_wall:>+11.2f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        loadgen(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), Path(sys.argv[6]))
        sys.exit(0)
    sys.exit(main())
