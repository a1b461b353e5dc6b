#!/usr/bin/env bash
# One command from a fresh clone: install everything, then start `berth serve` on its embedded defaults
# (SQLite, filesystem blobs, runc) in the background, with its data in ./.berth-data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
DATA_DIR="${BERTH_DATA_DIR:-$PWD/.berth-data}"
PORT="${BERTH_PORT:-8080}"
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
echo "  export BERTH_SERVER=http://127.0.0.1:$PORT BERTH_DATA_DIR=$DATA_DIR"
echo "  npx berth group create -n demo -l westus"
echo "  npx berth acr create -n demoregistry -g demo --sku Basic"
echo "Or the real az CLI (apt-get install azure-cli):"
echo "  eval \"\$(npx berth cloud register)\"   # then az login --service-principal ... (README: Use the real az CLI)"
echo "Logs: $DATA_DIR/serve.log"
