#!/usr/bin/env bash
# Going further (reference solution): backend-v1's image as a private service,
# backend-v1-private. Only callers holding roles/run.invoker on it get through
# (the frontend's service account, see deploy_frontend_v1_private.sh);
# everyone else gets HTTP 403 from Cloud Run before the container sees the
# request. A service of its own: the graded backend-v1 stays public (Q3).
# Usage, from any folder, after solution/submit_build_backend_v1.sh:
#   bash solution/extensions/deploy_backend_v1_private.sh
# Check: curl "$url/health" answers 403; with
#   -H "Authorization: Bearer $(gcloud auth print-identity-token)"
# (your own account, which may invoke as the project's owner) it answers 200.
set -euo pipefail

region="northamerica-northeast1"
repository="${REPOSITORY:-ml-deploy}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi
image="$region-docker.pkg.dev/$project/$repository/backend-v1:latest"

# Q3's deploy, but --no-allow-unauthenticated: Cloud Run checks a
# Google-signed ID token on every request before it reaches the container.
gcloud run deploy backend-v1-private \
  --image="$image" \
  --region="$region" \
  --port=8080 \
  --memory=2Gi \
  --cpu=2 \
  --cpu-boost \
  --max-instances=3 \
  --no-allow-unauthenticated \
  --set-env-vars="MODEL_NAME=resnet50"
