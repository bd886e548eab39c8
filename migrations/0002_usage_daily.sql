-- Daily rollups of the hourly usage table (issue 15, src/tollgate/retention.py).
-- The cron rolls hourly rows older than USAGE_ROLLUP_AFTER_DAYS into one row per
-- client, rule and UTC day, in one D1 batch (a transaction): the day's row gets the
-- hours' counts added and the hourly rows are deleted, so a repeated run finds nothing
-- to move. Daily rows older than USAGE_RETENTION_DAYS are deleted.
CREATE TABLE IF NOT EXISTS usage_daily (
  client        TEXT    NOT NULL,   -- keyed client hash, as in usage
  rule          TEXT    NOT NULL,
  day_start     INTEGER NOT NULL,   -- epoch ms of the UTC day
  allowed       INTEGER NOT NULL,
  admitted      INTEGER NOT NULL,
  denied        INTEGER NOT NULL,
  shadow_denied INTEGER NOT NULL,
  hours         INTEGER NOT NULL,   -- hourly rows rolled in
  version       INTEGER NOT NULL,   -- the highest hourly version rolled in
  updated_at    INTEGER NOT NULL,   -- epoch ms of the rollup that wrote it
  PRIMARY KEY (client, rule, day_start)
);

CREATE INDEX IF NOT EXISTS usage_daily_day ON usage_daily (day_start);

-- usage_totals (the store's decision totals for /__tollgate/metrics) must not move when
-- hours become a day: deleting the hourly rows subtracts (usage_totals_on_delete), these
-- add the same counts back. Deleting daily rows (retention) leaves the totals alone: they
-- are counters of everything ever decided.
CREATE TRIGGER IF NOT EXISTS usage_daily_totals_on_insert AFTER INSERT ON usage_daily
BEGIN
  INSERT INTO usage_totals (rule, allowed, admitted, denied, shadow_denied)
  VALUES (NEW.rule, NEW.allowed, NEW.admitted, NEW.denied, NEW.shadow_denied)
  ON CONFLICT (rule) DO UPDATE SET
    allowed = allowed + excluded.allowed, admitted = admitted + excluded.admitted,
    denied = denied + excluded.denied, shadow_denied = shadow_denied + excluded.shadow_denied;
END;

CREATE TRIGGER IF NOT EXISTS usage_daily_totals_on_update AFTER UPDATE ON usage_daily
BEGIN
  INSERT INTO usage_totals (rule, allowed, admitted, denied, shadow_denied)
  VALUES (NEW.rule, NEW.allowed - OLD.allowed, NEW.admitted - OLD.admitted,
          NEW.denied - OLD.denied, NEW.shadow_denied - OLD.shadow_denied)
  ON CONFLICT (rule) DO UPDATE SET
    allowed = allowed + excluded.allowed, admitted = admitted + excluded.admitted,
    denied = denied + excluded.denied, shadow_denied = shadow_denied + excluded.shadow_denied;
END;
