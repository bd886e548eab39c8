// What workerd gives a Python Worker and its Durable Objects, for Node: env bindings
// (Durable Object namespaces, D1), execution contexts, scheduled controllers.
//
// The SDK recognises bindings by constructor name (workers/rpc.py _EnvWrapper,
// entrypoints.DurableObjectContext), so every class here carries the name workerd's
// class has. Calls into Python go through conformance_bridge (workerd's
// wrapper_func semantics, see py/conformance_bridge.py).
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import { threadCpuNs } from './cpu.mjs';
import { DurableObjectStorage } from './sql_storage.mjs';

// ---------------------------------------------------------------------------
// Contexts
// ---------------------------------------------------------------------------

/** The `ctx` of a Worker event. toStringTag matters: workerd's patchWaitUntil checks it. */
export class ExecutionContext {
  constructor() { this._waitUntil = []; this.props = {}; }
  waitUntil(promise) { this._waitUntil.push(Promise.resolve(promise)); }
  passThroughOnException() {}
  get [Symbol.toStringTag]() { return 'ExecutionContext'; }
  /** Harness only: settle everything passed to waitUntil (workerd keeps the event alive for it). */
  async _settle() {
    const errors = [];
    while (this._waitUntil.length) {
      const batch = this._waitUntil.splice(0);
      for (const r of await Promise.allSettled(batch)) if (r.status === 'rejected') errors.push(r.reason);
    }
    if (errors.length) throw errors[0];
  }
}

/** The controller a cron trigger passes to `scheduled` (workerd's ScheduledController). */
export class ScheduledController {
  constructor(scheduledTime, cron) { this.scheduledTime = scheduledTime; this.cron = cron; this._noRetry = false; }
  noRetry() { this._noRetry = true; }
}

export class DurableObjectId {
  constructor(hex, name) { this._hex = hex; if (name !== undefined) this.name = name; }
  toString() { return this._hex; }
  equals(other) { return String(other) === this._hex; }
}

export class DurableObjectState {
  constructor(id, storage) { this.id = id; this.storage = storage; this._waitUntil = []; }
  waitUntil(p) { this._waitUntil.push(Promise.resolve(p)); }
  async blockConcurrencyWhile(fn) { return await fn(); }
  abort(reason) { throw new Error(`Durable Object aborted: ${reason ?? ''}`); }
}

// ---------------------------------------------------------------------------
// Durable Objects
// ---------------------------------------------------------------------------

/** Copy a value the way Workers RPC does (structured clone); Request bodies excepted. */
function rpcCopy(value) {
  if (value instanceof Request || value instanceof Response) return value;
  return structuredClone(value);
}

function jsError(e) {
  // Errors cross RPC as Error(name, message); the Python traceback text is the message.
  const err = new Error(e?.message ?? String(e));
  err.name = e?.name === 'PythonError' ? 'Error' : (e?.name ?? 'Error');
  return err;
}

/**
 * Runs Durable Object instances of the Worker's Python classes: one instance per id,
 * its own SQLite file, one event at a time (each call waits for the previous one).
 */
export class DurableObjectHost {
  constructor({ stateDir, bridge, getClass, env }) {
    this.stateDir = stateDir;
    this.bridge = bridge;
    this.getClass = getClass; // className -> Python class (lazy: the bundle loads after env)
    this.env = env;
    this.objects = new Map();
    this.calls = 0;
    // CPU the objects' RPC methods used, while `accountCpu` is on (lib/measure.mjs): on
    // Cloudflare a Durable Object runs in its own isolate, so the Worker's share is apart.
    this.accountCpu = false;
    this.cpuNs = 0;
  }

  #object(className, id) {
    const key = `${className}:${id}`;
    let obj = this.objects.get(key);
    if (!obj) {
      const file = path.join(this.stateDir, `${className}-${id.toString()}.sqlite`);
      const storage = new DurableObjectStorage(file);
      const state = new DurableObjectState(id, storage);
      obj = { key, className, id, storage, state, queue: Promise.resolve(), instance: null, alarmRetries: 0 };
      this.objects.set(key, obj);
    }
    return obj;
  }

  #enqueue(obj, work) {
    const run = obj.queue.then(async () => {
      if (!obj.instance) {
        // workerd constructs the Python class with the raw JS ctx and env (initPyInstance).
        obj.instance = this.getClass(obj.className)(obj.state, this.env);
      }
      return await work(obj.instance);
    });
    obj.queue = run.catch(() => {});
    return run;
  }

  async call(className, id, prop, args) {
    const obj = this.#object(className, id);
    this.calls += 1;
    const copied = args.map(rpcCopy);
    try {
      return await this.#enqueue(obj, async (inst) => {
        if (!this.bridge.has_method(inst, prop)) throw new TypeError(`The RPC receiver does not implement the method "${prop}".`);
        // Sequential callers only: between these two reads nothing but this call runs.
        const started = this.accountCpu ? threadCpuNs() : 0;
        try {
          const result = await this.bridge.call_rpc(prop === 'fetch', inst, prop, ...copied);
          const copy = rpcCopy(result);
          if (result && typeof result.destroy === 'function') result.destroy();
          return copy;
        } finally {
          if (this.accountCpu) this.cpuNs += threadCpuNs() - started;
        }
      });
    } catch (e) {
      throw jsError(e);
    }
  }

  /** Objects whose alarm is due at `now` (all with an alarm when now is undefined). */
  dueAlarms(now) {
    return [...this.objects.values()].filter((o) => {
      const at = o.storage._pendingAlarm();
      return at !== null && (now === undefined || at <= now);
    });
  }

  /**
   * Deliver due alarms like workerd: the alarm is cleared, then `alarm(alarmInfo)` runs with
   * the raw JS alarmInfo {retryCount, isRetry}; a throw re-arms it for a retry.
   */
  async runAlarms(now) {
    const outcomes = [];
    for (const obj of this.dueAlarms(now)) {
      const scheduled = obj.storage._pendingAlarm();
      obj.storage._clearAlarm();
      const info = { retryCount: obj.alarmRetries, isRetry: obj.alarmRetries > 0 };
      try {
        await this.#enqueue(obj, (inst) => this.bridge.call_handler(inst, 'alarm', info));
        obj.alarmRetries = 0;
        outcomes.push({ key: obj.key, ok: true });
      } catch (e) {
        obj.alarmRetries += 1;
        if (obj.storage._pendingAlarm() === null) await obj.storage.setAlarm(scheduled);
        outcomes.push({ key: obj.key, ok: false, error: jsError(e) });
      }
    }
    return outcomes;
  }

  close() { for (const o of this.objects.values()) o.storage.close(); }
}

class DurableObject {} // workerd's stub class name

function makeStub(host, className, id) {
  const target = new DurableObject();
  target.id = id;
  target.name = id.name;
  // Like workerd's JsRpcStub: every property is a remote method, except `then`
  // (a stub is not a thenable) and the few real properties above.
  return new Proxy(target, {
    get(t, prop, receiver) {
      if (typeof prop !== 'string' || prop === 'then' || prop in t) return Reflect.get(t, prop, receiver);
      return (...args) => host.call(className, id, prop, args);
    },
  });
}

export class DurableObjectNamespace {
  #host; #className;
  constructor(host, className) { this.#host = host; this.#className = className; }
  idFromName(name) {
    const hex = createHash('sha256').update(`${this.#className}\0${name}`).digest('hex');
    return new DurableObjectId(hex, name);
  }
  newUniqueId() { return new DurableObjectId(randomBytes(32).toString('hex')); }
  idFromString(hex) {
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new TypeError('Invalid Durable Object ID: must be 64 hex digits');
    return new DurableObjectId(hex);
  }
  get(id) {
    if (!(id instanceof DurableObjectId)) throw new TypeError('get() expects a DurableObjectId');
    return makeStub(this.#host, this.#className, id);
  }
  getByName(name) { return this.get(this.idFromName(name)); }
  jurisdiction() { return this; }
}

// ---------------------------------------------------------------------------
// D1
// ---------------------------------------------------------------------------
// Source: cloudflare/workerd src/cloudflare/internal/d1-api.ts (commit 6552d999):
// bind() accepts number | string | null | boolean (stored 1/0) | bytes, anything else throws
// "D1_TYPE_ERROR: Type '<t>' not supported for value '<v>'"; run()/all() resolve to
// {success: true, meta, results}; first(col?) to a row object (or the column) or null;
// batch() runs the statements in one transaction and resolves to one result each.

function d1Value(r) {
  const t = typeof r;
  if (t === 'number' || t === 'string') return r;
  if (t === 'boolean') return r ? 1 : 0;
  if (t === 'object') {
    if (r == null) return r;
    if (Array.isArray(r) && r.every((b) => typeof b === 'number' && b >= 0 && b < 256)) return Buffer.from(r);
    if (r instanceof ArrayBuffer) return Buffer.from(r);
    if (ArrayBuffer.isView(r)) return Buffer.from(r.buffer, r.byteOffset, r.byteLength);
  }
  throw new Error(`D1_TYPE_ERROR: Type '${t}' not supported for value '${r}'`);
}

function d1Out(v) {
  if (Buffer.isBuffer(v)) return [...v];
  if (typeof v === 'bigint') return Number(v);
  return v;
}

export class D1PreparedStatement {
  constructor(db, statement, params = []) { this._db = db; this.statement = statement; this.params = params; }
  bind(...values) { return new D1PreparedStatement(this._db, this.statement, values.map(d1Value)); }
  _execute() {
    const db = this._db._sqlite;
    const started = performance.now();
    let stmt;
    try {
      stmt = db.prepare(this.statement);
    } catch (e) {
      throw new Error(`D1_ERROR: ${e.message}: SQLITE_ERROR`);
    }
    let results = [];
    let info = { changes: 0, lastInsertRowid: 0 };
    try {
      if (stmt.reader) {
        const cols = stmt.columns().map((c) => c.name);
        results = stmt.raw(true).all(...this.params).map((r) => Object.fromEntries(cols.map((c, i) => [c, d1Out(r[i])])));
        info.changes = db.prepare('SELECT changes() AS n').get().n;
      } else {
        info = stmt.run(...this.params);
      }
    } catch (e) {
      throw new Error(`D1_ERROR: ${e.message}: ${e.code ?? 'SQLITE_ERROR'}`);
    }
    const duration = performance.now() - started;
    return {
      success: true,
      results,
      meta: {
        served_by: 'conformance-harness', served_by_region: 'LOCAL', served_by_primary: true,
        duration, changes: info.changes, last_row_id: Number(info.lastInsertRowid),
        changed_db: info.changes > 0, size_after: 0,
        rows_read: results.length, rows_written: stmt.reader ? 0 : info.changes,
        timings: { sql_duration_ms: duration },
      },
    };
  }
  async run() { return this._execute(); }
  async all() { return this._execute(); }
  async raw({ columnNames = false } = {}) {
    const { results } = this._execute();
    const rows = results.map((r) => Object.values(r));
    if (columnNames) rows.unshift(results.length ? Object.keys(results[0]) : []);
    return rows;
  }
  async first(colName) {
    const { results } = this._execute();
    if (!results.length) return null;
    if (colName !== undefined) {
      if (results[0][colName] === undefined) throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${colName})`);
      return results[0][colName];
    }
    return results[0];
  }
}

export class D1Database {
  constructor(file = ':memory:') {
    this._sqlite = new Database(file);
    this._sqlite.pragma('journal_mode = WAL');
    this._sqlite.pragma('synchronous = OFF');
    this.queries = 0;
  }
  prepare(query) { this.queries += 1; return new D1PreparedStatement(this, query); }
  async batch(statements) {
    if (!Array.isArray(statements)) throw new TypeError('batch() expects an array of D1PreparedStatement');
    for (const s of statements) if (!(s instanceof D1PreparedStatement)) throw new TypeError('batch() expects D1PreparedStatement objects');
    return this._sqlite.transaction(() => statements.map((s) => s._execute()))();
  }
  async exec(query) {
    const started = performance.now();
    try { this._sqlite.exec(query); } catch (e) { throw new Error(`D1_EXEC_ERROR: Error in line 1: ${query}: ${e.message}`); }
    return { count: query.split(';').filter((s) => s.trim()).length, duration: performance.now() - started };
  }
  /** Harness only: read rows directly. */
  _rows(sql, ...params) { return this._sqlite.prepare(sql).all(...params); }
  close() { this._sqlite.close(); }
}
