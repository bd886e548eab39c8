#!/usr/bin/env node
// The core test suite (tests/core) under pytest inside the production interpreter:
// npm pyodide 314.0.6, CPython 3.14, the one workerd runs for our compatibility date.
//
//   node tests/pyodide/core_on_pyodide.mjs '<bootstrap JSON>'
//
// Why a Node host and not workerd: pytest needs a filesystem with the repo and its
// wheels on it (NODEFS mounts), and the core is pure: no Worker API is involved.
// The Worker and Durable Object code runs on real workerd in the two-runtime suite.
// The last line is `pyodide core: N passed, N failed, N skipped`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootPyodide } from './lib/pyodide_boot.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const boot = JSON.parse(process.argv[2]);
const say = (line) => process.stdout.write(line + '\n');

const started = performance.now();
const py = await bootPyodide({
  mounts: [[boot.root, '/repo'], [boot.site, '/site'], [path.join(HERE, 'py'), '/harness']],
  path: ['/repo', '/site', '/harness'],
  out: (line) => say('  | ' + line),
});
py.runPython("import os; os.chdir('/repo')");
say(`pyodide ${py.version}, python ${py.runPython('import sys; sys.version.split()[0]')}`);
const summary = JSON.parse(py.pyimport('run_core_tests').run('/repo/tests/core', '/repo'));
const seconds = ((performance.now() - started) / 1000).toFixed(1);
if (summary.failed_tests.length) say(`failed: ${summary.failed_tests.join(', ')}`);
say(`pytest exit ${summary.exit} after ${seconds} s`);
say(`pyodide core: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped`);
process.exit(summary.exit === 0 && summary.failed === 0 && summary.passed > 0 ? 0 : 1);
