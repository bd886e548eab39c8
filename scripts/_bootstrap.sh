# Sourced by scripts/dev, scripts/test and scripts/bench: make the pinned
# environment exist (Python venv, and the npm packages when node is here),
# reinstalling only when the pins changed. Safe to run on a fresh clone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# One installer at a time: scripts/dev, scripts/test and scripts/bench may start
# together, and two `npm ci` runs wipe each other's node_modules.
mkdir -p "$ROOT/.cache"
exec 9>"$ROOT/.cache/bootstrap.lock"
flock 9

want=$(stamp_of requirements-dev.txt)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: creating $VENV with pinned packages" >&2
  "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Tollgate needs Python 3.11+"'
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$VENV/.stamp"
fi
export PATH="$VENV/bin:$PATH"

# Debian packages the tests drive for real (promtool, nginx, caddy, ...), one per
# line in scripts/apt-packages.txt; installed once per list version when root.
want_apt=$(stamp_of scripts/apt-packages.txt)
if [ "$(cat "$ROOT/.cache/apt.stamp" 2>/dev/null)" != "$want_apt" ] && [ "$(id -u)" = 0 ] \
   && command -v apt-get >/dev/null 2>&1 && [ -z "${TOLLGATE_NO_APT:-}" ]; then
  mapfile -t apt_pkgs < <(grep -v '^\s*#' scripts/apt-packages.txt | grep -v '^\s*$')
  echo "bootstrap: installing Debian packages: ${apt_pkgs[*]}" >&2
  if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}"; } >"$ROOT/.cache/apt.log" 2>&1; then
    echo "$want_apt" > "$ROOT/.cache/apt.stamp"
  else
    echo "bootstrap: apt-get failed (see .cache/apt.log); tests that need these programs will fail" >&2
  fi
fi

if command -v node >/dev/null 2>&1; then
  want_js=$(stamp_of package.json package-lock.json)
  if [ ! -d node_modules ] || [ "$(cat node_modules/.stamp 2>/dev/null)" != "$want_js" ]; then
    echo "bootstrap: installing pinned npm packages (wrangler, pyodide, better-sqlite3)" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
    echo "$want_js" > node_modules/.stamp
  fi
fi

flock -u 9
exec 9>&-
