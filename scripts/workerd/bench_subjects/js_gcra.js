// The comparison for `scripts/bench workerd`: what a user might write instead of adopting
// Tollgate. A JavaScript Worker and a JavaScript SQLite Durable Object doing one GCRA rule
// (burst 40 at 20/s), one row per client, answering with a RateLimit header.
import { DurableObject } from "cloudflare:workers";

const PERIOD_MS = 50; // 20 per second
const BURST = 40;

export class Gcra extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS tat (k INTEGER PRIMARY KEY, t REAL)");
  }

  decide(cost) {
    const now = Date.now();
    const row = this.sql.exec("SELECT t FROM tat WHERE k = 0").toArray()[0];
    const tat = Math.max(row ? row.t : now, now);
    const next = tat + cost * PERIOD_MS;
    if (next - now > BURST * PERIOD_MS) return { allowed: false, remaining: 0 };
    this.sql.exec("INSERT OR REPLACE INTO tat (k, t) VALUES (0, ?)", next);
    return { allowed: true, remaining: Math.floor((BURST * PERIOD_MS - (next - now)) / PERIOD_MS) };
  }
}

export default {
  async fetch(request, env) {
    const stub = env.GCRA.getByName(request.headers.get("x-api-key") || "anon");
    const d = await stub.decide(1);
    return new Response(JSON.stringify(d), {
      status: d.allowed ? 200 : 429,
      headers: { "content-type": "application/json", RateLimit: `"burst";r=${d.remaining}` },
    });
  },
};
