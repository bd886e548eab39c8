// The two workerd-internal modules Cloudflare's `workers` SDK imports, as workerd
// provides them: plain JS objects registered with pyodide.registerJsModule.
//
// Source: cloudflare/workerd src/pyodide/python-entrypoint-helper.ts
// (get_pyodide_entrypoint_helper, patchWaitUntil) and
// src/pyodide/internal/metadata.ts (COMPATIBILITY_FLAGS), read at commit 6552d999.

// Compatibility flags the SDK 1.9.5 reads (utils.get_compat_flag,
// entrypoints._WorkflowStepWrapper), with the dates from workerd's
// src/workerd/io/compatibility-date.capnp.
const FLAG_DATES = {
  // pythonRequestHeadersPreserveCommas @157: $compatEnableDate("2026-02-17")
  python_request_headers_preserve_commas: { date: '2026-02-17', off: 'disable_python_request_headers_preserve_commas' },
  // pythonWorkflowsImplicitDeps @155: $impliedByAfterDate(pythonWorkers, "2026-02-25")
  python_workflows_implicit_dependencies: { date: '2026-02-25', off: 'no_python_workflows_implicit_dependencies' },
};

/** The flag object workerd would expose for this compatibility date and flag list. */
export function compatibilityFlags(date, flags = []) {
  const result = {};
  for (const flag of flags) result[flag] = true;
  for (const [name, { date: since, off }] of Object.entries(FLAG_DATES)) {
    result[name] = flags.includes(name) || (date >= since && !flags.includes(off));
  }
  return result;
}

const waitUntilPatched = new WeakSet();

/**
 * workerd's patchWaitUntil: lets Python pass its own awaitables to
 * ctx.waitUntil by awaiting them inside a JS promise.
 */
export function patchWaitUntil(ctx) {
  let tag;
  try { tag = Object.prototype.toString.call(ctx); } catch { /* not an object */ }
  if (tag !== '[object ExecutionContext]' || waitUntilPatched.has(ctx)) return;
  const original = ctx.waitUntil.bind(ctx);
  ctx.waitUntil = (p) => {
    original((async () => {
      const owned = typeof p?.copy === 'function' ? p.copy() : p;
      await owned;
      if (typeof owned?.destroy === 'function') owned.destroy();
    })());
  };
  waitUntilPatched.add(ctx);
}

/** `_pyodide_entrypoint_helper`: `from workers import env` reads cloudflareWorkersModule.env. */
export function entrypointHelper(workersModule) {
  return {
    cloudflareWorkersModule: workersModule,
    cloudflareSocketsModule: {},
    patchWaitUntil,
    async doAnImport(name) {
      if (name === 'cloudflare:workers') return workersModule;
      throw new Error(`conformance harness: no JS module ${name}`);
    },
  };
}
