#!/usr/bin/env bash
# Deploy frontend v2 to Cloud Run (reference solution).
# Usage, from any folder, after submit_build_frontend_v2.sh and
# deploy_backend_v2.sh:
#   bash solution/deploy_frontend_v2.sh
set -euo pipefail

region="northamerica-northeast1"
repository="${REPOSITORY:-ml-deploy}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi
# The image cloudbuild_frontend_v2.yaml pushed.
image="$region-docker.pkg.dev/$project/$repository/frontend-v2:latest"

# The frontend calls backend-v2: ask Cloud Run for its URL instead of
# pasting it, so a redeployed backend is always the one called.
backend_url="$(gcloud run services describe backend-v2 --region="$region" --format='value(status.url)')"
if [[ -z "$backend_url" ]]; then
  echo "backend-v2 has no URL yet: run deploy_backend_v2.sh first" >&2
  exit 1
fi

# Service names take lowercase letters, digits and dashes (no underscores).
# The image listens on $PORT; Cloud Run sets it from --port (PORT itself is
# reserved). Streamlit keeps each browser's state in one instance over a
# websocket: session affinity keeps a browser on that instance.
gcloud run deploy frontend-v2 \
  --image="$image" \
  --region="$region" \
  --port=8080 \
  --memory=512Mi \
  --cpu=1 \
  --max-instances=3 \
  --session-affinity \
  --allow-unauthenticated \
  --set-env-vars="SERVING_URL=$backend_url"
