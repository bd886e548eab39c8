// The two figures the README reports, each beside CPython's from the same run:
//  - bundle import time after the interpreter is up (the SDK import shown apart),
//  - CPU per decision through the Worker on /__tollgate/allow: CPU time of the thread that
//    runs the interpreter (lib/cpu.mjs) around a loop of fetch calls, divided by the count,
//    split into the Durable Object's share (its RPC calls, timed inside the stand-in) and
//    the Worker's (the rest). On Cloudflare the two run in separate isolates.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { processCpuNs, threadCpuNs, THREAD_CPU_SOURCE } from './cpu.mjs';
import { edgeRequest } from './worker_host.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);
export const DECISIONS = 400;
export const BATCHES = 4;
const WARMUP = 40;
export const GOALS = { importMs: 150, cpuMsPerDecision: 0.3 };

/**
 * The shipped rules with limits the loop never reaches, so every measured decision is an admit.
 * 4000 per second, not more: GCRA stores its arrival time scaled by the count (ms x count), which
 * must stay below 2^53 to cross into workerd's SQLite as a JS number (see scenarios.mjs).
 */
export function benchConfig(base) {
  const cfg = structuredClone(base);
  cfg.rules = (cfg.rules ?? []).map((r) => ({ ...r, limit: '4000/second', ...(r.burst !== undefined ? { burst: 4000 } : {}) }));
  cfg.overrides = {};
  return cfg;
}

/**
 * CPU and wall time per request of `path`: after a warm-up, BATCHES batches of DECISIONS/BATCHES
 * requests; the figure is the cheapest batch (the machine's other load only ever adds).
 * Optional cProfile of the whole loop.
 */
async function pyodideLoop(host, env, path, { profile = false } = {}) {
  // Requests are built before the clock starts: workerd parses them outside the Worker.
  const request = () => edgeRequest(`https://tollgate.example${path}`, { headers: { 'x-api-key': 'bench-client' } });
  const one = async (req) => {
    const r = await host.fetch(req, env);
    if (r.status !== 200) throw new Error(`${path} answered ${r.status}: ${await r.text()}`);
    await r.arrayBuffer();
  };
  for (let i = 0; i < WARMUP; i++) await one(request());
  if (profile) host.py.runPython('import cProfile; _bench_prof = cProfile.Profile(); _bench_prof.enable()');
  const per = DECISIONS / BATCHES;
  let best = { cpuMs: Infinity, wallMs: Infinity };
  const objects = host.objects;
  objects.accountCpu = true;
  try {
    for (let b = 0; b < BATCHES; b++) {
      const requests = Array.from({ length: per }, request);
      objects.cpuNs = 0;
      const wall = performance.now();
      const proc = processCpuNs();
      const cpu = threadCpuNs();
      for (const req of requests) await one(req);
      const cpuMs = (threadCpuNs() - cpu) / 1e6 / per;
      if (cpuMs < best.cpuMs) {
        best = {
          cpuMs, wallMs: (performance.now() - wall) / per,
          objectCpuMs: objects.cpuNs / 1e6 / per,
          processCpuMs: (processCpuNs() - proc) / 1e6 / per,
        };
      }
    }
  } finally {
    objects.accountCpu = false;
  }
  best.workerCpuMs = best.cpuMs - best.objectCpuMs;
  if (profile) {
    host.py.runPython(`_bench_prof.disable()
import pstats
pstats.Stats(_bench_prof).sort_stats("${process.env.TOLLGATE_CONFORMANCE_PROFILE_SORT === 'cumulative' ? 'cumulative' : 'tottime'}").print_stats(40)
del _bench_prof`);
  }
  return best;
}

function cpython(python, bundleDir, boot, tollgate) {
  // -B: compile the bundle from source as Pyodide does, and leave no __pycache__ behind.
  const run = spawnSync(python, ['-B', path.join(HERE, '..', 'py', 'cpython_bench.py'),
    '--bundle', bundleDir, '--root', boot.root, '--decisions', String(DECISIONS), '--batches', String(BATCHES), '--warmup', String(WARMUP),
    '--tollgate-json', JSON.stringify(tollgate), '--secrets-json', JSON.stringify(boot.project.secrets ?? {})],
  { encoding: 'utf8', cwd: boot.root });
  if (run.status !== 0) throw new Error(`cpython_bench.py failed (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1));
}

export async function measure({ host, boot, bundleDir, results, say, python }) {
  let pyodide;
  let baseline;
  const env = host.envWith({ TOLLGATE: benchConfig(host.env.TOLLGATE) });
  await results.check(`measure: ${DECISIONS} decisions on /__tollgate/allow through the Worker on Pyodide`, async () => {
    pyodide = await pyodideLoop(host, env, '/__tollgate/allow', { profile: !!process.env.TOLLGATE_CONFORMANCE_PROFILE });
    // The same event machinery around a route that decides nothing: what every request costs
    // before our code runs (SDK conversions, a Default instance, Request/Response).
    try { baseline = await pyodideLoop(host, env, '/__tollgate/health'); } catch { baseline = undefined; }
    return `${pyodide.cpuMs.toFixed(3)} ms CPU per decision (${THREAD_CPU_SOURCE}): Worker ${pyodide.workerCpuMs.toFixed(3)}, Durable Object ${pyodide.objectCpuMs.toFixed(3)}`;
  });
  let native;
  await results.check('measure: the same bundle and loop on CPython with the local runtime', async () => {
    native = cpython(python, bundleDir, boot, env.TOLLGATE);
    return `${native.cpu_ms_per_decision.toFixed(3)} ms CPU per decision`;
  });
  const fmt = (v, digits) => (typeof v === 'number' ? v.toFixed(digits) : 'n/a');
  say('');
  say('figure                                      Pyodide 0.28.3   CPython ' + (native?.python ?? '') + '   goal');
  say(`bundle import after boot, wall (ms)         ${fmt(host.bundleImportMs, 1).padStart(14)}   ${fmt(native?.bundle_import_ms, 1).padStart(14)}   < ${GOALS.importMs}`);
  say(`bundle import after boot, CPU (ms)          ${fmt(host.bundleImportCpuMs, 1).padStart(14)}   ${fmt(native?.bundle_import_cpu_ms, 1).padStart(14)}`);
  say(`  before it, workers SDK import, wall (ms)  ${fmt(host.sdkImportMs, 1).padStart(14)}   ${fmt(native?.sdk_import_ms, 1).padStart(14)}`);
  say(`CPU per decision, /__tollgate/allow (ms)    ${fmt(pyodide?.cpuMs, 3).padStart(14)}   ${fmt(native?.cpu_ms_per_decision, 3).padStart(14)}   < ${GOALS.cpuMsPerDecision}`);
  say(`  in the Worker isolate (ms)                ${fmt(pyodide?.workerCpuMs, 3).padStart(14)}`);
  say(`  in the ClientBucket Durable Object (ms)   ${fmt(pyodide?.objectCpuMs, 3).padStart(14)}`);
  say(`  /__tollgate/health, no decision (ms)      ${fmt(baseline?.cpuMs, 3).padStart(14)}   ${fmt(native?.health_cpu_ms, 3).padStart(14)}`);
  say(`  whole Node process, all threads (ms)      ${fmt(pyodide?.processCpuMs, 3).padStart(14)}`);
  say(`wall per decision, sequential (ms)          ${fmt(pyodide?.wallMs, 3).padStart(14)}   ${fmt(native?.wall_ms_per_decision, 3).padStart(14)}`);
  say('');
  return { pyodide, baseline, native };
}
