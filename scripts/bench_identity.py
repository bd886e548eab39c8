#!/usr/bin/env python3
"""scripts/bench identity: what each identity layer (issue 11) costs per request on real workerd.

One `wrangler dev` (scripts/dev --workerd, the dry-run bundle) serves `/__tollgate/allow`
with every layer configured; the request kinds below are sent to that one process in
interleaved batches, so the machine's other load falls on every kind alike. Per batch:
the CPU time of the workerd process running the Worker and its Durable Objects
(/proc/<pid>/stat, as `scripts/bench workerd`) per request, over --batch requests on 8
connections, and the median time of one request sent alone (--alone requests on one
connection). The figures are medians over --rounds batches.

  IP only (baseline)       no key, no token: the client is its address, one bucket
  known key (cached)       an API key found in D1 known_keys, its answer cached in the isolate
  unknown key (D1 each)    a new random key every request: a D1 read each, counted as unknown:<address>
  JWT HS256 (cached)       the same tokens again: the signature was checked once per token
  JWT RS256 (new token)    a new token every request: one WebCrypto RSA verify each
  JWT ES256 (new token)    the same with ECDSA P-256
  known key + IP rule      a path whose rules include one with key = "ip": two buckets, two RPCs

    scripts/bench identity [--rounds 5] [--batch 300] [--alone 100]
"""
from __future__ import annotations

import argparse
import functools
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
WIDE = "100000/second"
KINDS = {"IP only (baseline)": "ip", "known key (cached)": "known", "unknown key (D1 each)": "random",
         "JWT HS256 (cached)": "hs256", "JWT RS256 (new token)": "rs256", "JWT ES256 (new token)": "es256",
         "known key + IP rule": "two"}


def tollgate(public_jwks: dict) -> dict:
    return {"identity": ["jwt:sub", "header:x-api-key", "ip"],
            "rules": [{"name": "wide", "limit": WIDE},
                      {"name": "per_ip", "limit": WIDE, "key": "ip", "match": {"paths": ["/two*"]}}],   # /allow/two decides /two
            "known_keys": {"unknown_keys": "per_ip", "cache_seconds": 600},
            "jwt": {"algorithms": ["HS256", "RS256", "ES256"], "secret": "JWT_SECRET", "jwks": public_jwks}}


def signing_keys(folder: Path) -> tuple[dict, Path]:
    """A fresh RSA and EC key: their public JWKS for the config, their PEMs for the load generator."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    rsa_key, ec_key = rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(ec.SECP256R1())
    keys = [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "r1"},
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "e1"}]
    pem = folder / "signing-keys.pem"
    pem.write_bytes(b"\n--SPLIT--\n".join(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()) for k in (rsa_key, ec_key)))
    return {"keys": keys}, pem


def load(url: str, kind: str, requests: int, connections: int, pem: Path) -> dict:
    done = subprocess.run([PY, __file__, "--loadgen", url, kind, str(requests), str(connections), str(pem)],
                          capture_output=True, text=True, timeout=900)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"load generator failed: {done.stdout}\n{done.stderr}")
    return json.loads(line[7:])


def request_headers(kind: str, i: int, pem: Path) -> dict[str, str]:
    import secrets

    import jwt
    if kind in ("known", "two"):
        return {"X-Api-Key": f"bench-{i % KEYS}"}
    if kind == "random":
        return {"X-Api-Key": "r-" + secrets.token_hex(10)}
    if kind == "ip":
        return {}
    claims = {"sub": f"user-{i % KEYS}", "exp": int(time.time()) + 3600}
    if kind == "hs256":
        return {"Authorization": "Bearer " + jwt.encode(claims, HS_SECRET, algorithm="HS256")}
    rsa_key, ec_key = private_keys(pem)
    key, alg, kid = (rsa_key, "RS256", "r1") if kind == "rs256" else (ec_key, "ES256", "e1")
    claims["jti"] = f"{time.time_ns()}-{i}"
    return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})}


@functools.lru_cache(maxsize=1)
def private_keys(pem: Path) -> tuple:
    from cryptography.hazmat.primitives import serialization
    return tuple(serialization.load_pem_private_key(p, None) for p in pem.read_bytes().split(b"\n--SPLIT--\n"))


def loadgen(url: str, kind: str, requests: int, connections: int, pem: Path) -> None:
    """Own process: the batch's headers made first, then `requests` GETs; prints RESULT json."""
    import asyncio

    import aiohttp
    sent = [request_headers(kind, i, pem) for i in range(requests)]
    target = url + ("/two" if kind == "two" else "")

    async def main() -> dict:
        todo, statuses, spent = iter(sent), {}, []

        async def worker(http: aiohttp.ClientSession) -> None:
            for h in todo:
                t0 = time.perf_counter()
                async with http.get(target, headers=h) as r:
                    await r.read()
                spent.append(time.perf_counter() - t0)
                statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as http:
            await asyncio.gather(*(worker(http) for _ in range(connections)))
        return {"statuses": statuses, "median_ms": statistics.median(spent) * 1000}
    print("RESULT " + json.dumps(asyncio.run(main())), flush=True)


def add_known_keys(config: Path, state: Path) -> None:
    for i in range(KEYS):
        subprocess.run([PY, str(ROOT / "scripts" / "keys"), "--config", str(config), "--persist-to",
                        str(state / "workerd" / "persist"), "add", f"bench-{i}"], check=True, capture_output=True)


def batch(proc: subprocess.Popen, url: str, kind: str, args: argparse.Namespace, pem: Path) -> dict:
    pid = user_worker_pid(proc.pid)
    before = cpu_seconds(pid)
    busy = load(url, kind, args.batch, 8, pem)
    cpu = (cpu_seconds(pid) - before) * 1000 / args.batch
    alone = load(url, kind, args.alone, 1, pem)
    if set(busy["statuses"]) | set(alone["statuses"]) != {"200"}:
        raise RuntimeError(f"{kind}: not every request was admitted: {busy['statuses']} {alone['statuses']}")
    return {"cpu_ms": cpu, "alone_ms": alone["median_ms"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/bench identity", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", type=int, default=300, help="requests per kind and round, on 8 connections")
    p.add_argument("--alone", type=int, default=100, help="requests per kind and round sent one at a time")
    args = p.parse_args(argv)
    rows: dict[str, list[dict]] = {name: [] for name in KINDS}
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-identity-") as tmp:
        work = Path(tmp)
        public_jwks, pem = signing_keys(work)
        bundle, _ = dry_run.build(work / "bundle")
        config = derived_config(work / "cfg", {"TOLLGATE": tollgate(public_jwks)}, SECRETS, name="tollgate-bench",
                                keep=KEPT + ("d1_databases",))
        proc, url = start(workerd_cmd(config, work / "state", "none", bundle))
        try:
            add_known_keys(config, work / "state")
            url += "/__tollgate/allow"
            for kind in KINDS.values():
                load(url, kind, 100, 8, pem)                   # warm-up: imports, objects, caches
            for n in range(args.rounds):
                for name, kind in KINDS.items():
                    rows[name].append(batch(proc, url, kind, args, pem))
                print(f"  round {n + 1}: " + ", ".join(f"{kind} {rows[name][-1]['cpu_ms']:.2f} ms"
                                                      for name, kind in KINDS.items()), flush=True)
        finally:
            end(proc)
    report(rows, args)
    return 0


def report(rows: dict[str, list[dict]], args: argparse.Namespace) -> None:
    med = {name: (statistics.median(r["cpu_ms"] for r in got), statistics.median(r["alone_ms"] for r in got))
           for name, got in rows.items()}
    base_cpu, base_alone = med["IP only (baseline)"]
    print(f"\nworkerd 1.20261117.1, Pyodide 314.0.6; {args.rounds} interleaved rounds of {args.batch} requests "
          f"on 8 connections and {args.alone} alone per kind; medians")
    print(f"{'request kind':<26}{'CPU ms/request':>16}{'vs baseline':>13}{'alone ms':>10}{'vs baseline':>13}")
    for name, (cpu, alone) in med.items():
        print(f"{name:<26}{cpu:>16.3f}{cpu - base_cpu:>+13.3f}{alone:>10.2f}{alone - base_alone:>+13.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loadgen":
        loadgen(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), Path(sys.argv[6]))
        sys.exit(0)
    sys.exit(main())
