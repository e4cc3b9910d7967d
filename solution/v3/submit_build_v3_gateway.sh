#!/usr/bin/env bash
# Build the v3 gateway's images with Cloud Build (reference solution).
# Usage, from any folder:  bash solution/v3/submit_build_v3_gateway.sh
# The model services reuse backend-v1's image: build it first with
# solution/submit_build_backend_v1.sh.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd -- "$script_dir/../.." && pwd)"
config="$script_dir/cloudbuild_v3_gateway.yaml"
repository="${REPOSITORY:-ml-deploy}"

gcloud builds submit "$repo_root" \
  --config="$config" \
  --substitutions="_REPOSITORY=$repository"
