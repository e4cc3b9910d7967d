#!/usr/bin/env bash
# Deploy backend v2 to Cloud Run (reference solution).
# Usage, from any folder, after submit_build_backend_v2.sh:
#   bash solution/deploy_backend_v2.sh
set -euo pipefail

region="northamerica-northeast1"
repository="${REPOSITORY:-ml-deploy}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi
# The image cloudbuild_backend_v2.yaml pushed.
image="$region-docker.pkg.dev/$project/$repository/backend-v2:latest"

# Service names take lowercase letters, digits and dashes (no underscores).
# The image listens on $PORT; Cloud Run sets it from --port (PORT itself is
# reserved and cannot be passed with --set-env-vars). v2 can hold several
# models at once, hence 4 GiB. Each user's model choice lives in a
# server-side session: session affinity sends a user back to the instance
# that holds it.
gcloud run deploy backend-v2 \
  --image="$image" \
  --region="$region" \
  --port=8080 \
  --memory=4Gi \
  --cpu=2 \
  --cpu-boost \
  --max-instances=3 \
  --session-affinity \
  --allow-unauthenticated \
  --set-env-vars="MODEL_NAME=resnet50"
