#!/usr/bin/env bash
# All of v3 in order (reference solution): build the gateway, deploy one
# service per model, the gateway in front of them, then frontend v2 against
# the gateway. backend-v1's and frontend-v2's images must exist already.
# Usage, from any folder:  bash solution/v3/deploy_v3.sh
set -euo pipefail
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"

bash "$script_dir/submit_build_v3_gateway.sh"
bash "$script_dir/deploy_models_v3.sh"
bash "$script_dir/deploy_gateway_v3.sh"
bash "$script_dir/deploy_frontend_v3.sh"
