// CPU time of the thread that runs the isolate, the figure workerd's CPU limit counts.
//
// process.cpuUsage() adds every thread of the process: V8's concurrent GC and compiler
// threads, libuv's pool. On a busy loop those add 20-30% that a Worker is not billed for,
// so the harness reads the main thread's own time from Linux's schedstat (nanoseconds on
// CPU; Documentation/scheduler/sched-stats.rst) and falls back to the process figure
// elsewhere. Node 20 has no process.threadCpuUsage() (added in Node 23.9).
import fs from 'node:fs';

const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;
const haveSchedstat = (() => {
  try { return /^\d+ /.test(fs.readFileSync(SCHEDSTAT, 'utf8')); } catch { return false; }
})();

/** Nanoseconds of CPU used so far by the main thread (or the whole process, without schedstat). */
export function threadCpuNs() {
  if (haveSchedstat) return Number(fs.readFileSync(SCHEDSTAT, 'utf8').split(' ', 1)[0]);
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** Nanoseconds of CPU used so far by every thread of the process. */
export function processCpuNs() {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

export const THREAD_CPU_SOURCE = haveSchedstat ? 'main thread (schedstat)' : 'whole process (no schedstat here)';
