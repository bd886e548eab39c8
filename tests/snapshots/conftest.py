"""Make `workers` importable the way the local runtime does (its SDK shim on sys.path)."""
from __future__ import annotations

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "src" / "localedge" / "sdk"

if SDK.is_dir() and str(SDK) not in sys.path:
    sys.path.insert(0, str(SDK))
try:
    import workers  # noqa: F401
except ImportError:  # runtime not built yet: the base class is all the unit tests need
    shim = types.ModuleType("workers")

    class DurableObject:  # mirrors workers.DurableObject.__init__ (sdk entrypoints.py)
        def __init__(self, ctx, env):
            self.ctx, self.env = ctx, env

    shim.DurableObject = DurableObject
    sys.modules["workers"] = shim
