"""Notice at start that IDENTITY_SECRET changed since the state folder was last used.

Why: every client's Durable Object and usage row is named by HMAC(IDENTITY_SECRET,
identity). A new secret (an overwritten .dev.vars) silently orphans all of them: every
client starts with a fresh quota and its stored usage no longer adds up. The state
folder keeps a fingerprint of the secret it was used with (a 64-bit prefix of a
domain-separated SHA-256, never the secret), and a mismatch is said loudly.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

FILE = "identity_secret.fingerprint"


def fingerprint(secret: str) -> str:
    return hashlib.sha256(b"tollgate identity-secret fingerprint\x00" + secret.encode()).hexdigest()[:16]


def check(state_dir: Path, secret: str | None, dev_vars: Path) -> str | None:
    """The warning to print, or None. Records the fingerprint on first use; keeps the old
    one on a change, so the warning repeats until the operator decides."""
    if not secret:
        return None
    path = Path(state_dir) / FILE
    now = fingerprint(secret)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(now + "\n")
        return None
    before = path.read_text().strip()
    if before == now:
        return None
    bar = "!" * 78
    return "\n".join([
        bar,
        f"IDENTITY_SECRET in {dev_vars} is not the one {state_dir} was used with.",
        "Every client's bucket and stored usage is named by a hash keyed with it: with this secret",
        "every client starts afresh (a new quota) and its stored usage is orphaned.",
        f"  - meant to keep the state? put the old IDENTITY_SECRET back in {dev_vars}",
        f"  - meant to start over? delete {state_dir} (or {path} to adopt the new secret)",
        bar])
