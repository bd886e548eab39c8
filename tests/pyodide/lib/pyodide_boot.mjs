// Boot the real Pyodide (npm pyodide, the interpreter Python Workers run) offline
// under Node, with host folders mounted through NODEFS and put on sys.path.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/**
 * @param {object} opts
 * @param {Array<[string, string]>} opts.mounts  [hostDir, guestDir] pairs, mounted in order
 * @param {string[]} opts.path  guest folders to prepend to sys.path, first wins
 * @param {Record<string, object>} opts.jsModules  JS objects importable as Python modules
 * @param {(line: string) => void} opts.out  receives every line Python prints
 */
export async function bootPyodide({ mounts = [], path: sysPath = [], jsModules = {}, out = console.log }) {
  const pkg = path.dirname(require.resolve('pyodide/package.json'));
  const { loadPyodide } = await import(path.join(pkg, 'pyodide.mjs'));
  const py = await loadPyodide({ indexURL: pkg + path.sep });
  // Line-buffered: pytest flushes after every progress dot, and a line per dot is noise.
  for (const set of [py.setStdout, py.setStderr]) {
    const decoder = new TextDecoder();
    let pending = '';
    set.call(py, {
      write(bytes) {
        pending += decoder.decode(bytes, { stream: true });
        const lines = pending.split('\n');
        pending = lines.pop();
        for (const line of lines) out(line);
        return bytes.length;
      },
    });
  }
  for (const [host, guest] of mounts) {
    py.FS.mkdirTree(guest);
    py.FS.mount(py.FS.filesystems.NODEFS, { root: host }, guest);
  }
  for (const [name, obj] of Object.entries(jsModules)) py.registerJsModule(name, obj);
  py.globals.set('_harness_path', py.toPy(sysPath));
  py.runPython(`
import sys
sys.dont_write_bytecode = True   # never leave __pycache__ in mounted host folders
for p in reversed(list(_harness_path)):
    sys.path.insert(0, p)
del _harness_path
`);
  return py;
}
