#!/usr/bin/env bash
# uvicorn (uvloop, httptools: as the gateway serves) against granian, serving bench/server_ab/app.py pinned to
# CPU 0, wrk on CPU 1, POSTs of a tools/call body at c=1, 16, 64 (4 s each). Neither is a project dependency:
#   python3.11 -m venv /tmp/gv && /tmp/gv/bin/pip install granian uvicorn uvloop httptools
#   VENV=/tmp/gv bench/server_ab/run.sh uvicorn; VENV=/tmp/gv bench/server_ab/run.sh granian
# GRANIAN_ARGS adds options (e.g. "--runtime-mode st", "--interface asginl").
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-/tmp/gv}
PORT=${PORT:-18123}
if [ "$1" = uvicorn ]; then
  taskset -c 0 "$VENV/bin/uvicorn" app:app --port "$PORT" --loop uvloop --http httptools --log-level warning \
    --no-access-log &
else
  # shellcheck disable=SC2086
  taskset -c 0 "$VENV/bin/granian" --interface asgi --port "$PORT" --workers 1 --runtime-threads 1 \
    --loop uvloop --log-level warning --no-ws ${GRANIAN_ARGS:-} app:app &
fi
server=$!
trap 'kill $server; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null -X POST "localhost:$PORT/" && break; sleep 0.1; done
for c in 1 16 64; do
  echo "$1 c=$c $(taskset -c 1 wrk -t1 -c"$c" -d4s -s post.lua "http://127.0.0.1:$PORT/" | grep Requests/sec)"
done
