#!/usr/bin/env bash
# Build backend v1's images with Cloud Build (reference solution).
# Usage, from any folder:  bash solution/submit_build_backend_v1.sh
# Uploads the repo root (minus what .gcloudignore lists) as the build context
# and runs cloudbuild_backend_v1.yaml, which sits next to this script.
set -euo pipefail

# Paths from this script's own location, quoted: a folder may contain spaces.
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd -- "$script_dir/.." && pwd)"
config="$script_dir/cloudbuild_backend_v1.yaml"
# The Artifact Registry repository; the deploy scripts read the same variable.
repository="${REPOSITORY:-ml-deploy}"

gcloud builds submit "$repo_root" \
  --config="$config" \
  --substitutions="_REPOSITORY=$repository"
