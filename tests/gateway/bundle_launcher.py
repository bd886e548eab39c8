"""Run the local runtime on a wrangler bundle, importing the Worker from the bundle's own folder.

    python tests/gateway/bundle_launcher.py <bundle dir> --config ... (the `python -m src.localedge` arguments)

The bundle and the repo both have a top-level package `src` (the bundle's holds
only src/tollgate). The bundle comes first on sys.path, so `src`, `worker`,
`durable_objects` and `entry` are the bundle's; the repo's src/ is appended to
`src.__path__` only so that `src.localedge` (the runtime, not in the bundle)
can be found. Before serving, it prints where the Worker's modules came from.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

bundle = Path(sys.argv.pop(1)).resolve()
sys.path[:] = [str(bundle)] + [p for p in sys.path if p not in ("", ".", str(REPO), str(Path(__file__).parent))]
import src  # noqa: E402  (the bundle's)

src.__path__.append(str(REPO / "src"))
from src.localedge.sdk import install  # noqa: E402

install()
import durable_objects.bucket  # noqa: E402,F401
import entry  # noqa: E402,F401
import src.tollgate.config  # noqa: E402,F401
import worker.gateway  # noqa: E402,F401

print("modules " + json.dumps({name: sys.modules[name].__file__ for name in
                               ("entry", "worker.gateway", "src.tollgate.config", "durable_objects.bucket")}),
      flush=True)
from src.localedge.__main__ import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
