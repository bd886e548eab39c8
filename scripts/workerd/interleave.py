"""`scripts/bench workerd --interleave N`: every subject up at once, measured in turns.

Why: on a shared 2-core machine the load of other work drifts by more than a change is
worth (whole 0.3 ms swings between rounds a minute apart). Rounds that start each subject in
turn compare subjects measured minutes apart. Here all subjects run side by side and are
loaded in short alternating blocks (the order rotates every block), so every block of one
subject has a block of each other subject within seconds of it; the figures are then taken
per block and compared block by block. An idle subject costs its process no CPU worth
counting, and only the loaded subject's process is read.
"""
from __future__ import annotations

import argparse
import subprocess
from typing import Callable

Subject = tuple[list[str], str, bool]     # (command, path, on workerd)


def interleaved(subjects: dict[str, Subject], args: argparse.Namespace, blocks: int,
                start: Callable, end: Callable, measure_block: Callable) -> list[dict[str, dict]]:
    """One dict per block, {subject: {"cpu_ms", "cold_ms", "rps"}}, as the rounds of the
    ordinary mode are (so the summary prints the same way: ranges over blocks)."""
    running: dict[str, tuple[subprocess.Popen, str, str, bool]] = {}
    try:
        for name, (cmd, path, on_workerd) in subjects.items():
            proc, url = start(cmd)
            running[name] = (proc, url, path, on_workerd)
        cold = {name: measure_block(proc, url, path, args, on_workerd, warm=True)
                for name, (proc, url, path, on_workerd) in running.items()}
        names = list(running)
        out = []
        for b in range(blocks):
            order = names[b % len(names):] + names[:b % len(names)]
            block: dict[str, dict] = {}
            for name in order:
                proc, url, path, on_workerd = running[name]
                block[name] = {**measure_block(proc, url, path, args, on_workerd, warm=False),
                               "cold_ms": cold[name]}
                print(f"  block {b + 1}: {name:<22} {block[name]['cpu_ms']:.3f} ms CPU/request", flush=True)
            out.append({name: block[name] for name in names})
        return out
    finally:
        for proc, *_ in running.values():
            end(proc)
