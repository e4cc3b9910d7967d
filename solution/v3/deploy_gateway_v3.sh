#!/usr/bin/env bash
# Deploy the v3 gateway (reference solution), routing to the model services
# that deploy_models_v3.sh deployed. Their URLs come from Cloud Run itself,
# so a redeployed model is always the one routed to.
# Usage, from any folder, after submit_build_v3_gateway.sh and deploy_models_v3.sh:
#   bash solution/v3/deploy_gateway_v3.sh
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

routes=()
for model in "${models[@]}"; do
  url="$(service_url "model-${model//_/-}" "run deploy_models_v3.sh first")"
  routes+=("$model=$url")
done
model_services="$(IFS=,; echo "${routes[*]}")"

# PRIVATE_MODELS=1 (the model services were deployed private): the gateway
# runs as its own service account, which may invoke each model service, and
# signs each upstream call with an ID token (BACKEND_AUTH=id-token).
identity=()
auth_env=""
if [[ "${PRIVATE_MODELS:-0}" == 1 ]]; then
  account="v3-gateway@$project.iam.gserviceaccount.com"
  if [[ -z "$(gcloud iam service-accounts list --filter="email=$account" --format='value(email)')" ]]; then
    gcloud iam service-accounts create v3-gateway --display-name="v3-gateway: calls the models"
  fi
  for model in "${models[@]}"; do
    gcloud run services add-iam-policy-binding "model-${model//_/-}" \
      --region="$region" \
      --member="serviceAccount:$account" \
      --role=roles/run.invoker
  done
  identity=(--service-account="$account")
  auth_env=";BACKEND_AUTH=id-token"
fi

# gcloud splits --set-env-vars at commas, and MODEL_SERVICES holds commas:
# the leading ^;^ makes ';' the separator instead (see `gcloud topic escaping`).
# The first model listed is the default. Each user's model choice lives in a
# server-side session on the instance: session affinity brings a user back
# to it (SESSION_STORE=redis shares sessions between instances instead).
gcloud run deploy v3-gateway \
  --image="$registry/v3-gateway:latest" \
  --region="$region" \
  --port=8080 \
  --memory=512Mi \
  --cpu=1 \
  --max-instances=3 \
  --concurrency=32 \
  --timeout=120 \
  --session-affinity \
  --allow-unauthenticated \
  ${identity[@]+"${identity[@]}"} \
  --set-env-vars="^;^MODEL_SERVICES=$model_services;SESSION_COOKIE_SECURE=true$auth_env"
