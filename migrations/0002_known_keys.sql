-- Known API keys (issue 11; README "Identities a client cannot mint"). Written by
-- scripts/keys, read by the Worker (worker/known_keys.py). A key is stored only as
-- HMAC-SHA256(KEYS_SECRET or IDENTITY_SECRET, "tollgate-known-key\0" + key), never raw.
CREATE TABLE IF NOT EXISTS known_keys (
  key_hash TEXT PRIMARY KEY,          -- src/tollgate/identity_layers.py known_key_hash
  label TEXT NOT NULL DEFAULT '',     -- the operator's note: who holds it
  plan TEXT,                          -- selects [vars.TOLLGATE.plans.<plan>]; NULL: the default rules
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER                  -- NULL: valid; set by `scripts/keys revoke`
);
