#!/usr/bin/env bash
# Start one component in the foreground, listening on $PORT, from the repo root.
# Usage: PORT=8080 tools/serve.sh <component>   (make serve SERVICE=<component> PORT=<port>)
# The commands match the CMD of each component's Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."
# Prefer the project virtualenv when there is one (there is none in the images).
if [ -d .venv/bin ]; then PATH="$PWD/.venv/bin:$PATH"; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
: "${PORT:=8080}"
# Local runs listen on loopback only; the images listen on 0.0.0.0.
: "${HOST:=127.0.0.1}"
export HOST
export PORT
component="${1:-}"

streamlit_app() {
  exec streamlit run "$1" \
    --server.port="$PORT" --server.address="$HOST" \
    --server.headless=true --browser.gatherUsageStats=false
}

case "$component" in
  backend_v1 | backend_v2 | v3_gateway)
    exec gunicorn --config "$component/gunicorn.conf.py" "$component.app:create_app()"
    ;;
  frontend_v1 | frontend_v2)
    streamlit_app "$component/app.py"
    ;;
  *)
    echo "usage: make serve SERVICE=<component> PORT=<port>" >&2
    echo "components: backend_v1 backend_v2 v3_gateway frontend_v1 frontend_v2" >&2
    exit 2
    ;;
esac
