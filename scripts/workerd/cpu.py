"""Which process runs the user Worker under `wrangler dev`, and how much CPU it has used:
what `scripts/bench workerd` and `scripts/bench identity` count."""
from __future__ import annotations

from pathlib import Path


def user_worker_pid(group_leader: int) -> int:
    """The workerd process of this process group that runs the user Worker: miniflare
    starts it with its entry socket on port 0 (the proxy's is the public port)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            pgid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except (OSError, IndexError, ValueError):
            continue
        if pgid == group_leader and cmd and cmd[0].endswith(b"workerd") and b"--socket-addr=entry=127.0.0.1:0" in cmd:
            return int(entry.name)
    raise RuntimeError("no user-worker workerd process found")


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid`, in ns resolution (schedstat's first field), so a
    short run on a fast runtime still measures; /proc/<pid>/stat counts 10 ms ticks."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9
