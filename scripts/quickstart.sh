#!/usr/bin/env bash
# One command from a fresh clone: install everything, then start `berth serve` on its embedded defaults
# (SQLite, filesystem blobs, runc) in the background, and put the `berth` command on the PATH.
#   BERTH_DATA_DIR  where the server keeps its data (default: the CLI's own default,
#                   ${XDG_DATA_HOME:-~/.local/share}/berth, so `berth` finds the server with no setting)
#   BERTH_PORT      the main port (default 8080)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
DATA_DIR="${BERTH_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/berth}"
PORT="${BERTH_PORT:-8080}"
# The CLI from this checkout as `berth` anywhere (npx only finds it inside the checkout).
BERTH_BIN="$PWD/bin/berth.js"
if [ -w /usr/local/bin ]; then
  ln -sf "$BERTH_BIN" /usr/local/bin/berth
  CLI=berth
else
  CLI="$BERTH_BIN"
  echo "berth: /usr/local/bin is not writable; run the CLI as $BERTH_BIN (or alias berth=$BERTH_BIN)"
fi
mkdir -p "$DATA_DIR"
if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/subscriptions" 2>/dev/null || [ -f "$DATA_DIR/server.json" ] && kill -0 "$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' "$DATA_DIR/server.json")" 2>/dev/null; then
  echo "berth: a server is already running for $DATA_DIR"
else
  nohup node bin/berth.js serve --data-dir "$DATA_DIR" --port "$PORT" >"$DATA_DIR/serve.log" 2>&1 &
  for _ in $(seq 1 100); do
    grep -q "Berth is ready" "$DATA_DIR/serve.log" 2>/dev/null && break
    sleep 0.1
  done
  if ! grep -q "Berth is ready" "$DATA_DIR/serve.log"; then
    echo "berth: the server did not start; its log:" >&2
    cat "$DATA_DIR/serve.log" >&2
    exit 1
  fi
  grep "Berth is ready" "$DATA_DIR/serve.log"
fi
echo
echo "Use the CLI:"
if [ "$DATA_DIR" != "${XDG_DATA_HOME:-$HOME/.local/share}/berth" ]; then
  echo "  export BERTH_DATA_DIR=$DATA_DIR"
fi
echo "  $CLI group create -n demo -l westus"
echo "  $CLI acr create -n demoregistry -g demo --sku Basic"
echo "Or the real az CLI (scripts/install.sh installed Debian's azure-cli):"
echo "  eval \"\$($CLI cloud register)\"   # then az login --service-principal ... (README: Use the real az CLI)"
echo "The portal: http://127.0.0.1:$PORT/portal/ (sign in with the one-time link \`$CLI portal\` prints)"
echo "Logs: $DATA_DIR/serve.log"
