// Load the wrangler dry-run bundle into a fresh Pyodide with Cloudflare's SDK and
// drive it the way workerd does: env built from wrangler.toml, a new `Default`
// instance per event constructed with the raw JS ctx and env, `fetch` called relaxed
// with (request, undefined, undefined), `scheduled` with (controller, undefined, undefined),
// as workerd calls a class-based entrypoint's handlers, both through
// workerd's argument/result conversion (py/conformance_bridge.py).
import fs from 'node:fs';
import path from 'node:path';
import { bootPyodide } from './pyodide_boot.mjs';
import { compatibilityFlags, entrypointHelper } from './workerd_internals.mjs';
import {
  D1Database, DurableObjectHost, DurableObjectNamespace, ExecutionContext, ScheduledController,
} from './bindings.mjs';

const HERE = path.dirname(new URL(import.meta.url).pathname);

/** env as workerd builds it: a plain object; JSON vars stay JS objects, text vars strings. */
function buildEnv(project, { secrets, overrides }) {
  const env = {};
  for (const [k, v] of Object.entries(project.vars ?? {})) env[k] = typeof v === 'string' ? v : structuredClone(v);
  for (const [k, v] of Object.entries(secrets)) env[k] = v;
  Object.assign(env, overrides);
  return env;
}

function applyD1Migrations(db, root, binding) {
  const dir = path.join(root, binding.migrations_dir ?? 'migrations');
  if (!fs.existsSync(dir)) return [];
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  for (const f of files) db._sqlite.exec(fs.readFileSync(path.join(dir, f), 'utf8'));
  return files;
}

export class WorkerHost {
  static async start({ boot, bundleDir, stateDir, envOverrides = {}, out }) {
    const host = new WorkerHost();
    const project = boot.project;
    host.project = project;
    host.env = buildEnv(project, { secrets: project.secrets ?? {}, overrides: envOverrides });
    const workersModule = { env: host.env, waitUntil: () => {} };
    host.py = await bootPyodide({
      mounts: [[bundleDir, '/bundle'], [boot.sdk, '/sdk'], [path.join(HERE, '..', 'py'), '/harness']],
      path: ['/bundle', '/sdk', '/harness'],
      jsModules: {
        _cloudflare_compat_flags: compatibilityFlags(project.compatibility_date, project.compatibility_flags),
        _pyodide_entrypoint_helper: entrypointHelper(workersModule),
      },
      out,
    });
    // Timed imports: the SDK first (workerd injects it before the main module), then the bundle.
    // Wall time and process CPU time: on a busy machine the wall figure grows, the CPU one less.
    const cpuMs = (u) => (u.user + u.system) / 1000;
    let t = performance.now();
    let c = process.cpuUsage();
    host.py.pyimport('workers');
    host.sdkImportMs = performance.now() - t;
    host.sdkImportCpuMs = cpuMs(process.cpuUsage(c));
    t = performance.now();
    c = process.cpuUsage();
    host.main = host.py.pyimport('entry'); // wrangler writes `main` as top-level entry.py
    host.bundleImportMs = performance.now() - t;
    host.bundleImportCpuMs = cpuMs(process.cpuUsage(c));
    host.bridge = host.py.pyimport('conformance_bridge');

    host.objects = new DurableObjectHost({
      stateDir, bridge: host.bridge, env: host.env,
      getClass: (name) => {
        const cls = host.main[name];
        if (typeof cls !== 'function') throw new TypeError(`There is no '${name}' class defined in the Python Worker's main module`);
        return cls;
      },
    });
    for (const b of project.durable_objects ?? []) host.env[b.name] = new DurableObjectNamespace(host.objects, b.class_name);
    host.d1 = {};
    for (const b of project.d1_databases ?? []) {
      const db = new D1Database(path.join(stateDir, `d1-${b.binding}.sqlite`));
      host.d1[b.binding] = { db, migrations: applyD1Migrations(db, boot.root, b) };
      host.env[b.binding] = db;
    }
    return host;
  }

  /** A new Default instance for one event, as workerd creates one per request. */
  async #event(prop, relaxed, firstArg, env) {
    const ctx = new ExecutionContext();
    const useEnv = env ?? this.env;
    const inst = this.main.Default(ctx, useEnv);
    try {
      // A class-based entrypoint's handlers get (event, undefined, undefined): workerd passes
      // the real env and ctx to the constructor only. cloudflare/workerd src/workerd/io/worker.c++,
      // getHandlerFromEntrypointClass: "We set handler.env and handler.ctx to undefined because we
      // already passed the real env and ctx into the constructor, and we want the handler methods
      // to act like they take just one parameter." (read Nov 2026). Passing the env here made
      // python_from_rpc deep-convert it on every request, which workerd never does.
      const result = await this.bridge.call_rpc(relaxed, inst, prop, firstArg, undefined, undefined);
      await ctx._settle();
      return result;
    } finally {
      inst.destroy();
    }
  }

  /** Serve one request; `env` replaces the whole env (e.g. another TOLLGATE config). */
  async fetch(request, env) {
    const response = await this.#event('fetch', true, request, env);
    if (!(response instanceof Response)) throw new TypeError(`fetch returned ${response}, not a Response`);
    return response;
  }

  /** A cron trigger: `scheduled(controller, env, ctx)`, not relaxed (workerd's wrapper_func). */
  async scheduled(cron, scheduledTime = Date.now()) {
    const controller = new ScheduledController(scheduledTime, cron);
    await this.#event('scheduled', false, controller);
    return controller;
  }

  /** An env like this one with some values replaced (bindings shared). */
  envWith(overrides) { return Object.assign(Object.assign({}, this.env), overrides); }

  close() {
    this.objects.close();
    for (const { db } of Object.values(this.d1)) db.close();
  }
}

/** A request as workerd hands it to a Worker: client IP in CF-Connecting-IP, a `cf` object. */
export function edgeRequest(url, { method = 'GET', headers = {}, body, ip = '203.0.113.7' } = {}) {
  const h = new Headers(headers);
  h.set('cf-connecting-ip', ip);
  const req = new Request(url, { method, headers: h, body });
  Object.defineProperty(req, 'cf', { value: { colo: 'LOCAL', country: 'XX', asn: 64512, clientTcpRtt: 1 }, enumerable: true });
  return req;
}
