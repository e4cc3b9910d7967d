#!/usr/bin/env bash
# Deploy frontend v2 in front of the v3 gateway (reference solution): the
# same image as frontend-v2, a second service whose SERVING_URL is the gateway.
# Usage, from any folder, after deploy_gateway_v3.sh (and
# solution/submit_build_frontend_v2.sh):
#   bash solution/v3/deploy_frontend_v3.sh
set -euo pipefail
region="northamerica-northeast1"
repository="${REPOSITORY:-ml-deploy}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project YOUR_PROJECT_ID" >&2
  exit 1
fi
registry="$region-docker.pkg.dev/$project/$repository"

# The https URL Cloud Run gave a deployed service, or a clear stop.
service_url() {
  local url
  url="$(gcloud run services describe "$1" --region="$region" --format='value(status.url)')"
  if [[ -z "$url" ]]; then
    echo "$1 has no URL yet: $2" >&2
    exit 1
  fi
  echo "$url"
}

gateway_url="$(service_url v3-gateway "run deploy_gateway_v3.sh first")"

gcloud run deploy frontend-v3 \
  --image="$registry/frontend-v2:latest" \
  --region="$region" \
  --port=8080 \
  --memory=512Mi \
  --cpu=1 \
  --max-instances=3 \
  --session-affinity \
  --allow-unauthenticated \
  --set-env-vars="SERVING_URL=$gateway_url"
