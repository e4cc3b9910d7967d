#!/usr/bin/env bash
# Going further (reference solution): v3 with private model services. Only
# the gateway may call them: they are deployed --no-allow-unauthenticated,
# the gateway runs as its own service account holding roles/run.invoker on
# each, and it sends an ID token whose audience is each model's URL. Without
# that, a private model service answers the gateway with 403.
# Usage, from any folder (backend-v1's and frontend-v2's images must exist):
#   bash solution/extensions/deploy_v3_private.sh
set -euo pipefail
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"

PRIVATE_MODELS=1 bash "$script_dir/../v3/deploy_v3.sh"
