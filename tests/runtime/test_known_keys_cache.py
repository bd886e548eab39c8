"""worker/known_keys.py with the clock injected: a revoked key is refused once the cached
answer is `cache_seconds` old, never later; an unknown key's answer is cached too."""
import asyncio

from src.tollgate import clock
from src.tollgate.identity_layers import KnownKeys, known_key_hash
from worker import known_keys


class FakeD1:
    """D1's prepare/bind/all shape over a dict of valid hashes; counts the reads."""

    def __init__(self) -> None:
        self.valid: dict[str, str | None] = {}
        self.reads = 0

    def prepare(self, sql):
        db = self

        class Stmt:
            def bind(self, key_hash):
                self.key_hash = key_hash
                return self

            async def all(self):
                db.reads += 1
                return {"results": [{"plan": db.valid[self.key_hash]}] if self.key_hash in db.valid else []}
        return Stmt()


class Env:
    def __init__(self, db):
        self.USAGE_DB = db


def test_revoked_key_refused_exactly_when_the_cache_bound_passes():
    known_keys.forget()
    db, layer, t = FakeD1(), KnownKeys(cache_ms=30_000), [1_000_000]
    db.valid[known_key_hash(b"s", "k1")] = "pro"
    look = lambda: asyncio.run(known_keys.lookup(Env(db), layer, b"s", "k1"))   # noqa: E731
    with clock.use(lambda: t[0]):
        assert look().plan == "pro"
        del db.valid[known_key_hash(b"s", "k1")]          # scripts/keys revoke
        t[0] += 29_999
        assert look() is not None and db.reads == 1        # still inside the bound: cached
        t[0] += 1
        assert look() is None and db.reads == 2            # the bound: refused
        t[0] += 10_000
        assert look() is None and db.reads == 2            # the unknown answer is cached too
    known_keys.forget()
