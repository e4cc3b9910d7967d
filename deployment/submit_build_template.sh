#!/usr/bin/env bash
# TEMPLATE: submit one Cloud Build config to Google Cloud Build.
#
# Copy it once per component and replace every FILL-ME:
#   deployment/submit_build_backend_v1.sh   deployment/submit_build_backend_v2.sh
#   deployment/submit_build_frontend_v1.sh  deployment/submit_build_frontend_v2.sh
# Run it from any folder:  bash deployment/submit_build_backend_v1.sh
set -euo pipefail

# This script's folder, wherever it is run from. Quote every path: a folder
# name may contain spaces, and an unquoted one splits into two words.
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
# The build context is the repo root, one level up from deployment/: gcloud
# uploads it (minus what .gcloudignore lists) and the Dockerfiles COPY from it.
repo_root="$(cd -- "$script_dir/.." && pwd)"
# FILL-ME: this component's Cloud Build config, next to this script,
# e.g. "$script_dir/cloudbuild_backend_v1.yaml".
config="$script_dir/FILL-ME"
# The Artifact Registry repository; the deploy scripts read the same variable,
# so the image built is the image deployed.
repository="${REPOSITORY:-ml-deploy}"

# --config: the build steps; --substitutions: values for ${_NAME} in them.
gcloud builds submit "$repo_root" \
  --config="$config" \
  --substitutions="_REPOSITORY=$repository"
