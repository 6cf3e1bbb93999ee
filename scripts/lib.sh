# Shared by scripts/run and scripts/test: install what is missing, quickly skip what is there.
# Versions come from the repository (Cargo.lock, end2end/package-lock.json), never from memory.
# Nothing here downloads a binary from GitHub: tools come from crates.io, npm and Debian.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# The site build (sitebuild/) needs only the wasm target: its JS bindings come from the
# wasm-bindgen-cli-support crate pinned to the locked library version, and wasm-opt from the npm
# packages below. cargo-leptos is needed only for `cargo leptos watch` (see README).
ensure_rust_tools() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

# Builds the browser site into $(site_root): `build_site` (debug) or `build_site --release`
# (wasm-release profile, wasm-opt -Oz). Files whose bytes did not change are left alone.
build_site() {
  cargo run -q -p sitebuild -- "$@" --site "$(site_root)"
}

# Builds the `tidings` binary with the site compiled in (one file): `build_one_file` (debug) or
# `build_one_file --release`. The site must have been built first (build_site).
build_one_file() {
  TIDINGS_SITE_DIR="$(site_root)" cargo build -p server --bin tidings --features embed-site "$@"
}

# npm packages of the end-to-end suite; they also provide wasm-opt (binaryen) for release builds.
# Debian's binaryen is too old: its wasm-opt output does not hydrate.
ensure_node_packages() {
  if ! command -v npm >/dev/null; then
    log "installing Node.js and npm from Debian"
    apt_install nodejs npm
  fi
  local stamp="$ROOT/end2end/node_modules/.installed"
  if [ ! -f "$stamp" ] || [ "$ROOT/end2end/package-lock.json" -nt "$stamp" ]; then
    log "installing the end2end npm packages"
    (cd "$ROOT/end2end" && npm ci --no-audit --no-fund)
    touch "$stamp"
  fi
  export PATH="$ROOT/end2end/node_modules/.bin:$PATH"
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian's chromium"
    apt_install chromium
  fi
}

# The store tests also run against MariaDB/MySQL. Use the one at TIDINGS_TEST_MYSQL_URL
# (default root@127.0.0.1:3306); if nothing answers there, install Debian's MariaDB and start it.
ensure_mariadb() {
  export TIDINGS_TEST_MYSQL_URL="${TIDINGS_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}"
  if port_open 127.0.0.1 3306; then return 0; fi
  if [ "$TIDINGS_TEST_MYSQL_URL" != "mysql://root@127.0.0.1:3306" ]; then return 0; fi
  if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
    log "installing Debian's mariadb-server"
    apt_install mariadb-server
  fi
  log "starting MariaDB on 127.0.0.1:3306"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --bind-address=127.0.0.1
  local i
  for ((i = 0; i < 120; i++)); do port_open 127.0.0.1 3306 && break; sleep 0.5; done
  # Debian's root uses socket authentication; the tests log in over TCP with an empty password.
  mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;" 2>/dev/null || true
  port_open 127.0.0.1 3306 || { log "MariaDB did not start"; return 1; }
}

# Cluster tests need a Redis: the one at TIDINGS_TEST_REDIS_URL (default 127.0.0.1:6379), or
# Debian's redis-server started here if nothing answers. Tests that kill Redis start their own
# private redis-server on a free port, so the binary must be installed either way.
ensure_redis() {
  export TIDINGS_TEST_REDIS_URL="${TIDINGS_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
  if ! command -v redis-server >/dev/null; then
    log "installing Debian's redis-server"
    apt_install redis-server
  fi
  if [ "$TIDINGS_TEST_REDIS_URL" = "redis://127.0.0.1:6379" ] && ! port_open 127.0.0.1 6379; then
    log "starting Redis on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    local i
    for ((i = 0; i < 40; i++)); do port_open 127.0.0.1 6379 && break; sleep 0.25; done
  fi
}

port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# Where cargo puts its output (honours CARGO_TARGET_DIR).
target_dir() {
  if [ -n "${CARGO_TARGET_DIR:-}" ]; then echo "$CARGO_TARGET_DIR"; else echo "$ROOT/target"; fi
}

# Where the site is built (pkg/, assets): target/site in the repository even when
# CARGO_TARGET_DIR points elsewhere (as cargo-leptos does), unless LEPTOS_SITE_ROOT says otherwise.
site_root() {
  echo "${LEPTOS_SITE_ROOT:-$ROOT/target/site}"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until the server at $1 answers /healthz, or fails after $2 seconds.
wait_healthy() {
  local url="$1" limit="${2:-60}" i
  for ((i = 0; i < limit * 4; i++)); do
    if curl -fsS "$url/healthz" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "the server at $url did not become healthy within ${limit}s"
  return 1
}

# Checks that the server at $1 serves the page and every site file itself (no site folder next
# to it): right type, precompressed for gzip clients, a validator that answers 304.
check_one_file() {
  local url="$1" path headers etag
  curl -fsS "$url/" | grep -q '/pkg/tidings.js' || { log "/ does not reference /pkg/tidings.js"; return 1; }
  for path in pkg/tidings.js pkg/tidings_bg.wasm pkg/tidings.css favicon.svg favicon-unread.svg; do
    headers="$(curl -fsS -o /dev/null -D - -H 'Accept-Encoding: gzip' "$url/$path" | tr -d '\r')" ||
      { log "GET /$path failed"; return 1; }
    etag="$(printf '%s\n' "$headers" | sed -n 's/^etag: //Ip')"
    [ -n "$etag" ] || { log "/$path has no ETag"; return 1; }
    printf '%s\n' "$headers" | grep -qi '^cache-control: ' || { log "/$path has no Cache-Control"; return 1; }
    case "$path" in
      *.js | *.wasm | *.css)
        printf '%s\n' "$headers" | grep -qi '^content-encoding: gzip' || { log "/$path is not served gzipped"; return 1; } ;;
    esac
    [ "$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$url/$path")" = 304 ] ||
      { log "/$path does not answer 304 to its own ETag"; return 1; }
  done
  # The plain bytes too: the WASM must start with the magic number.
  [ "$(curl -fsS "$url/pkg/tidings_bg.wasm" | head -c 4 | od -An -tx1 | tr -d ' ')" = 0061736d ] ||
    { log "/pkg/tidings_bg.wasm is not WebAssembly"; return 1; }
}
