"""Make `import workers` resolve to the local runtime's SDK, exactly as the runtime does."""
from __future__ import annotations

import sys
import types

try:
    from src.localedge.sdk import install
except ImportError:  # runtime not built yet
    install = None

if install is not None:
    install()
try:
    import workers  # noqa: F401
except ImportError:  # runtime not built yet: the base class is all the unit tests need
    shim = types.ModuleType("workers")

    class DurableObject:  # mirrors workers.DurableObject.__init__ (sdk entrypoints.py)
        def __init__(self, ctx, env):
            self.ctx, self.env = ctx, env

    shim.DurableObject = DurableObject
    sys.modules["workers"] = shim
