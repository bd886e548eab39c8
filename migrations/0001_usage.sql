-- Tollgate usage store (Cloudflare D1). Apply with:
--   wrangler d1 migrations apply tollgate-usage            (add --local for wrangler dev)
-- One row per client, rule and accounting hour; rows are cumulative within the
-- hour and replaced only by a higher version (worker/stores/d1.py), so a batch
-- delivered twice counts once.
CREATE TABLE IF NOT EXISTS usage (
  client        TEXT    NOT NULL,   -- keyed client hash (the ClientBucket name)
  rule          TEXT    NOT NULL,
  period_start  INTEGER NOT NULL,   -- epoch ms of the UTC hour
  allowed       INTEGER NOT NULL,   -- requests admitted
  admitted      INTEGER NOT NULL,   -- cost admitted (billing units)
  denied        INTEGER NOT NULL,   -- requests this rule denied
  shadow_denied INTEGER NOT NULL,   -- requests this shadow rule would have denied
  version       INTEGER NOT NULL,   -- the bucket's row version; only grows
  updated_at    INTEGER NOT NULL,   -- epoch ms of the flush that wrote it
  PRIMARY KEY (client, rule, period_start)
);

CREATE INDEX IF NOT EXISTS usage_period ON usage (period_start);

-- Running totals per rule for /__tollgate/metrics, kept exact by triggers so a
-- scrape reads a handful of rows instead of summing the whole table.
CREATE TABLE IF NOT EXISTS usage_totals (
  rule          TEXT PRIMARY KEY,
  allowed       INTEGER NOT NULL,
  admitted      INTEGER NOT NULL,
  denied        INTEGER NOT NULL,
  shadow_denied INTEGER NOT NULL
);

CREATE TRIGGER IF NOT EXISTS usage_totals_on_insert AFTER INSERT ON usage
BEGIN
  INSERT INTO usage_totals (rule, allowed, admitted, denied, shadow_denied)
  VALUES (NEW.rule, NEW.allowed, NEW.admitted, NEW.denied, NEW.shadow_denied)
  ON CONFLICT (rule) DO UPDATE SET
    allowed = allowed + excluded.allowed, admitted = admitted + excluded.admitted,
    denied = denied + excluded.denied, shadow_denied = shadow_denied + excluded.shadow_denied;
END;

CREATE TRIGGER IF NOT EXISTS usage_totals_on_update AFTER UPDATE ON usage
BEGIN
  INSERT INTO usage_totals (rule, allowed, admitted, denied, shadow_denied)
  VALUES (NEW.rule, NEW.allowed - OLD.allowed, NEW.admitted - OLD.admitted,
          NEW.denied - OLD.denied, NEW.shadow_denied - OLD.shadow_denied)
  ON CONFLICT (rule) DO UPDATE SET
    allowed = allowed + excluded.allowed, admitted = admitted + excluded.admitted,
    denied = denied + excluded.denied, shadow_denied = shadow_denied + excluded.shadow_denied;
END;

CREATE TRIGGER IF NOT EXISTS usage_totals_on_delete AFTER DELETE ON usage
BEGIN
  UPDATE usage_totals SET allowed = allowed - OLD.allowed, admitted = admitted - OLD.admitted,
    denied = denied - OLD.denied, shadow_denied = shadow_denied - OLD.shadow_denied
  WHERE rule = OLD.rule;
END;
