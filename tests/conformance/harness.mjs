#!/usr/bin/env node
// Conformance harness: our edge code on the real interpreter (Pyodide 0.28.3, the
// Python Workers run) with Cloudflare's real `workers` SDK (workers-runtime-sdk 1.9.5).
//
//   node tests/conformance/harness.mjs            (or: scripts/test tests/conformance -s)
//
// Phase A: tests/core under pytest inside Pyodide.
// Phase B: the bundle `wrangler deploy --dry-run` produces, imported from its own folder,
//          driven with Node's native Request objects exactly as workerd drives a Python
//          Worker (see lib/worker_host.mjs, py/conformance_bridge.py), with JS stand-ins for
//          what Node lacks: Durable Objects on better-sqlite3, D1, alarms, cron.
// Then the figures: bundle import time and CPU per decision, beside CPython's.
// Exit status 0 only when every check passed; the last line is
// `conformance: N passed, N failed`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootPyodide } from './lib/pyodide_boot.mjs';
import { Results } from './lib/results.mjs';
import { startOrigin } from './lib/origin.mjs';
import { WorkerHost } from './lib/worker_host.mjs';
import { scenarios } from './lib/scenarios.mjs';
import { measure } from './lib/measure.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// TOLLGATE_ROOT points the harness at another checkout (used to test the harness itself).
const ROOT = path.resolve(process.env.TOLLGATE_ROOT || path.join(HERE, '..', '..'));
const results = new Results();
const say = (line) => process.stdout.write(line + '\n');
const indent = (prefix) => (line) => say(prefix + line);

function python() {
  if (process.env.TOLLGATE_PYTHON) return process.env.TOLLGATE_PYTHON;
  const venv = path.join(ROOT, '.venv', 'bin', 'python');
  return fs.existsSync(venv) ? venv : 'python3';
}

function bootstrap() {
  const run = spawnSync(python(), [path.join(HERE, 'bootstrap.py')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (run.status !== 0) throw new Error(`bootstrap.py failed (exit ${run.status})`);
  return JSON.parse(run.stdout);
}

async function phaseA(boot) {
  const coreDir = path.join(ROOT, 'tests', 'core');
  if (!fs.existsSync(coreDir)) {
    results.record('phase A: tests/core on Pyodide', false, 'tests/core does not exist');
    return;
  }
  const started = performance.now();
  const py = await bootPyodide({
    mounts: [[ROOT, '/repo'], [boot.site, '/site'], [path.join(HERE, 'py'), '/harness']],
    path: ['/repo', '/site', '/harness'],
    out: indent('  | '),
  });
  py.runPython("import os; os.chdir('/repo')");
  const summary = JSON.parse(py.pyimport('run_core_tests').run('/repo/tests/core', '/repo'));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const ok = summary.exit === 0 && summary.failed === 0 && summary.passed > 0;
  results.record('phase A: tests/core under pytest on Pyodide', ok,
    `${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped in ${seconds} s` +
    (summary.failed_tests.length ? `; failed: ${summary.failed_tests.join(', ')}` : '') +
    (ok || summary.failed ? '' : `; pytest exit ${summary.exit}`));
}

function buildBundle() {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-bundle-'));
  const wrangler = path.join(ROOT, 'node_modules', '.bin', 'wrangler');
  const run = spawnSync(wrangler, ['deploy', '--dry-run', '--outdir', outdir], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1' },
  });
  if (run.status !== 0 || !fs.existsSync(path.join(outdir, 'entry.py'))) {
    throw new Error(`wrangler deploy --dry-run failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  }
  return outdir;
}

async function phaseB(boot) {
  let bundleDir;
  const ok = await results.check('phase B: wrangler deploy --dry-run builds the bundle', async () => {
    bundleDir = buildBundle();
    const modules = [];
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (p.endsWith('.py')) modules.push(path.relative(bundleDir, p)); } };
    walk(bundleDir);
    return `${modules.length} Python modules, main as entry.py`;
  });
  if (!ok) return;
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-state-'));
  const origin = await startOrigin();
  let host;
  try {
    const loaded = await results.check('phase B: the bundle imports on Pyodide with the real SDK', async () => {
      host = await WorkerHost.start({ boot, bundleDir, stateDir, envOverrides: { ORIGIN_URL: origin.url }, out: indent('  | ') });
      return `workers SDK ${host.sdkImportMs.toFixed(0)} ms, bundle ${host.bundleImportMs.toFixed(0)} ms`;
    });
    if (!loaded) return;
    await scenarios({ host, origin, results, say });
    await measure({ host, boot, bundleDir, results, say, python: python() });
  } finally {
    host?.close();
    await origin.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
    fs.rmSync(bundleDir, { recursive: true, force: true });
  }
}

async function main() {
  const started = performance.now();
  try {
    const boot = bootstrap();
    // TOLLGATE_CONFORMANCE_PHASES=B runs one phase only (for working on the harness).
    const phases = (process.env.TOLLGATE_CONFORMANCE_PHASES || 'AB').toUpperCase();
    if (phases.includes('A')) await phaseA(boot);
    if (phases.includes('B')) await phaseB(boot);
  } catch (e) {
    results.record('harness', false, e?.stack ?? String(e));
  }
  say(`harness wall time ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const ok = results.summary();
  process.exit(ok ? 0 : 1);
}

main();
