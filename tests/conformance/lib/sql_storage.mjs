// Durable Object storage on real SQLite (better-sqlite3 12), shaped like workerd's.
//
// Sources (cloudflare/workerd, commit 6552d999):
//  - src/workerd/api/sql.h / sql.c++: SqlStorage.exec(query, ...bindings) returns a
//    Cursor (TS name SqlStorageCursor): next(), toArray(), one(), raw(), iterable,
//    columnNames, rowsRead, rowsWritten. Bindings are null | string | number (bound as
//    double) | ArrayBuffer; INTEGER values come back as JS numbers (int64 coerced to double),
//    BLOBs as ArrayBuffer; rows are plain objects keyed by column name.
//    one() errors: "Expected exactly one result from SQL query, but got no results." /
//    "... but got multiple results."
//  - SqlStorageRegulator::allowTransactions: BEGIN/SAVEPOINT are refused with the message below.
//  - rowsRead/rowsWritten come from libSQL's LIBSQL_STMTSTATUS_ROWS_READ/WRITTEN, which
//    better-sqlite3 cannot read: here rowsWritten is the change count of the statement
//    (total_changes() delta) and rowsRead the rows it returned (or changed, for writes).
//    Approximate, and said so in the README.
import Database from 'better-sqlite3';
import v8 from 'node:v8';

const TRANSACTION_REFUSED =
  'To execute a transaction, please use the state.storage.transaction() or ' +
  'state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT ' +
  'statements. The JavaScript API is safer because it will automatically roll back on ' +
  'exceptions, and because it interacts correctly with Durable Objects\' automatic atomic ' +
  'write coalescing.';

function toBinding(value, index) {
  if (value === null || typeof value === 'string' || typeof value === 'number') return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  // workerd's BindingValue is kj::Maybe<OneOf<Array<byte>, String, double>>: anything else
  // (undefined, booleans, BigInt, objects) is not a clean SQL value there. Refuse loudly so
  // the harness flags code that relies on a coercion.
  throw new TypeError(`SQL binding ${index + 1} has unsupported type ${value === undefined ? 'undefined' : typeof value}`);
}

function fromSqlite(value) {
  if (Buffer.isBuffer(value)) return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
  if (typeof value === 'bigint') return Number(value);
  return value;
}

export class SqlStorageCursor {
  #rows; #columns; #index = 0;
  constructor(rows, columns, rowsRead, rowsWritten) {
    this.#rows = rows;
    this.#columns = columns;
    this._rowsRead = rowsRead;
    this._rowsWritten = rowsWritten;
  }
  get columnNames() { return [...this.#columns]; }
  get rowsRead() { return this._rowsRead; }
  get rowsWritten() { return this._rowsWritten; }
  #object(values) {
    const row = {};
    this.#columns.forEach((name, i) => { row[name] = values[i]; });
    return row;
  }
  next() {
    if (this.#index >= this.#rows.length) return { done: true, value: undefined };
    return { done: false, value: this.#object(this.#rows[this.#index++]) };
  }
  toArray() {
    const out = [];
    for (let r = this.next(); !r.done; r = this.next()) out.push(r.value);
    return out;
  }
  one() {
    const remaining = this.#rows.length - this.#index;
    if (remaining === 0) throw new Error('Expected exactly one result from SQL query, but got no results.');
    if (remaining > 1) {
      this.#index = this.#rows.length;
      throw new Error('Expected exactly one result from SQL query, but got multiple results.');
    }
    return this.next().value;
  }
  *raw() {
    while (this.#index < this.#rows.length) yield [...this.#rows[this.#index++]];
  }
  [Symbol.iterator]() {
    return { next: () => this.next(), [Symbol.iterator]() { return this; } };
  }
}

export class SqlStorage {
  #db; #cache = new Map(); #changes;
  constructor(db) {
    this.#db = db;
    this.#changes = db.prepare('SELECT total_changes() AS n');
  }
  #total() { return this.#changes.get().n; }
  /** Prepared statements cached by SQL text, as workerd's SqlStorage statement cache does. */
  #prepare(query) {
    let stmt = this.#cache.get(query);
    if (!stmt) {
      stmt = this.#db.prepare(query);
      if (this.#cache.size > 200) this.#cache.delete(this.#cache.keys().next().value);
      this.#cache.set(query, stmt);
    }
    return stmt;
  }
  get databaseSize() {
    const pages = this.#db.pragma('page_count', { simple: true });
    return pages * this.#db.pragma('page_size', { simple: true });
  }
  exec(query, ...bindings) {
    if (typeof query !== 'string') throw new TypeError('SqlStorage.exec: query must be a string');
    if (/^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i.test(query)) throw new Error(TRANSACTION_REFUSED);
    const values = bindings.map(toBinding);
    const before = this.#total();
    let stmt;
    try {
      stmt = this.#prepare(query);
    } catch (e) {
      // workerd runs every statement of a multi-statement string; better-sqlite3's exec does
      // the same when there is nothing to bind.
      if (values.length === 0 && /more than one statement/.test(String(e.message))) {
        this.#db.exec(query);
        const written = this.#total() - before;
        return new SqlStorageCursor([], [], written, written);
      }
      throw new Error(`${e.message}: SQLITE_ERROR`);
    }
    let rows = [];
    let columns = [];
    if (stmt.reader) {
      columns = stmt.columns().map((c) => c.name);
      rows = stmt.raw(true).all(...values).map((r) => r.map(fromSqlite));
      stmt.raw(false);
    } else {
      stmt.run(...values);
    }
    const written = this.#total() - before;
    return new SqlStorageCursor(rows, columns, stmt.reader ? rows.length : written, written);
  }
}

/** `ctx.storage` of a SQLite-backed Durable Object: sql, key-value API, alarms. */
export class DurableObjectStorage {
  #db; #alarm = null; #onAlarmChange;
  constructor(file, onAlarmChange = () => {}) {
    this.#db = new Database(file);
    // Durability here is the harness's business, not the measured code's: no fsync per statement.
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = OFF');
    this.#db.exec('CREATE TABLE IF NOT EXISTS _cf_KV (key TEXT PRIMARY KEY, value BLOB)');
    this.sql = new SqlStorage(this.#db);
    this.#onAlarmChange = onAlarmChange;
  }
  transactionSync(fn) { return this.#db.transaction(() => fn())(); }
  async transaction(fn) { return await fn(this); }
  async sync() {}
  async get(keys) {
    const one = (k) => {
      const row = this.#db.prepare('SELECT value FROM _cf_KV WHERE key = ?').get(String(k));
      return row ? v8.deserialize(row.value) : undefined;
    };
    if (Array.isArray(keys)) return new Map(keys.filter((k) => one(k) !== undefined).map((k) => [k, one(k)]));
    return one(keys);
  }
  async put(key, value) {
    if (typeof key === 'object' && key !== null) {
      for (const [k, v] of Object.entries(key)) await this.put(k, v);
      return;
    }
    this.#db.prepare('INSERT OR REPLACE INTO _cf_KV (key, value) VALUES (?, ?)').run(String(key), v8.serialize(value));
  }
  async delete(keys) {
    const list = Array.isArray(keys) ? keys : [keys];
    let n = 0;
    for (const k of list) n += this.#db.prepare('DELETE FROM _cf_KV WHERE key = ?').run(String(k)).changes;
    return Array.isArray(keys) ? n : n > 0;
  }
  async list({ prefix = '' } = {}) {
    const rows = this.#db.prepare('SELECT key, value FROM _cf_KV WHERE key >= ? ORDER BY key').all(prefix);
    return new Map(rows.filter((r) => r.key.startsWith(prefix)).map((r) => [r.key, v8.deserialize(r.value)]));
  }
  async deleteAll() { this.#db.exec('DELETE FROM _cf_KV'); }
  // Alarms: setAlarm(epoch ms | Date), getAlarm() -> ms | null, deleteAlarm(); all async.
  async setAlarm(when) {
    const ms = when instanceof Date ? when.getTime() : when;
    if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new TypeError('setAlarm() expects a number of milliseconds or a Date');
    this.#alarm = ms;
    this.#onAlarmChange(ms);
  }
  async getAlarm() { return this.#alarm; }
  async deleteAlarm() { this.#alarm = null; this.#onAlarmChange(null); }
  /** Harness only: the scheduled alarm time without a promise. */
  _pendingAlarm() { return this.#alarm; }
  _clearAlarm() { this.#alarm = null; }
  close() { this.#db.close(); }
}
