#!/usr/bin/env bash
# Deploy v3's model services (reference solution): one Cloud Run service per
# model, each the backend-v1 image with MODEL_NAME set, so each model scales,
# fails and is redeployed on its own.
# Usage, from any folder, after solution/submit_build_backend_v1.sh:
#   bash solution/v3/deploy_models_v3.sh
#   MODELS="efficientnet_lite0 resnet18 resnet50" bash solution/v3/deploy_models_v3.sh
set -euo pipefail
region="northamerica-northeast1"
repository="${REPOSITORY:-ml-deploy}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project YOUR_PROJECT_ID" >&2
  exit 1
fi
registry="$region-docker.pkg.dev/$project/$repository"
# One Cloud Run service per model, named model-<name with dashes> (service
# names take no underscores): efficientnet_lite0 -> model-efficientnet-lite0.
read -r -a models <<< "${MODELS:-efficientnet_lite0 resnet18}"

image="$registry/backend-v1:latest"
# Public like the v1 and v2 backends. PRIVATE_MODELS=1 keeps them private:
# only the gateway's service account may call them (deploy_gateway_v3.sh
# grants it, and the gateway sends an ID token; solution/extensions/).
access="--allow-unauthenticated"
if [[ "${PRIVATE_MODELS:-0}" == 1 ]]; then
  access="--no-allow-unauthenticated"
fi
for model in "${models[@]}"; do
  # One worker per 1-vCPU instance: Cloud Run scales out by adding instances.
  gcloud run deploy "model-${model//_/-}" \
    --image="$image" \
    --region="$region" \
    --port=8080 \
    --memory=2Gi \
    --cpu=1 \
    --cpu-boost \
    --max-instances=3 \
    "$access" \
    --set-env-vars="MODEL_NAME=$model,WEB_CONCURRENCY=1"
done
