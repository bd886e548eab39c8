// Pass/fail bookkeeping for the harness: every check prints one line, the run ends
// with `conformance: N passed, N failed`.
export class Results {
  constructor(print = (line) => process.stdout.write(line + '\n')) {
    this.print = print;
    this.passed = 0;
    this.failed = 0;
  }

  record(name, ok, detail = '') {
    if (ok) this.passed += 1; else this.failed += 1;
    this.print(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
    return ok;
  }

  /** Run one check; a thrown error (assertion or otherwise) fails it with its message. */
  async check(name, fn) {
    try {
      const detail = await fn();
      return this.record(name, true, typeof detail === 'string' ? detail : '');
    } catch (e) {
      // A PythonError's message is the Python traceback; its JS stack is Pyodide internals.
      const pythonError = e?.constructor?.name === 'PythonError' || typeof e?.type === 'string';
      const message = e?.stack && e?.name !== 'AssertionError' && !pythonError ? e.stack : (e?.message ?? String(e));
      const lines = message.split('\n');
      const shown = lines.length > 40 ? [...lines.slice(0, 10), '...', ...lines.slice(-28)] : lines;
      return this.record(name, false, shown.join('\n    '));
    }
  }

  summary() {
    this.print(`conformance: ${this.passed} passed, ${this.failed} failed`);
    return this.failed === 0 && this.passed > 0;
  }
}
