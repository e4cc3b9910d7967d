#!/usr/bin/env bash
# Optional: put Google's API Gateway (managed) in front of v3, from
# v3_gateway/openapi.yaml (reference solution). The per-model paths go
# straight to the model services; the body form and the session endpoints
# go to the Python gateway. Run after deploy_gateway_v3.sh.
# Usage, from any folder:  bash solution/v3/deploy_api_gateway_v3.sh
# API Gateway runs in fewer regions than Cloud Run: API_GATEWAY_REGION
# (default us-central1) may differ from the services' region.
set -euo pipefail
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
region="northamerica-northeast1"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project YOUR_PROJECT_ID" >&2
  exit 1
fi
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

gateway_region="${API_GATEWAY_REGION:-us-central1}"
spec="$(mktemp "${TMPDIR:-/tmp}/openapi-v3.XXXXXX.yaml")"
trap 'rm -f "$spec"' EXIT

# Fill in the addresses: ${GATEWAY_URL} and one ${MODEL_URL_<name>} per model
# (and drop the file's comment lines, which mention them too).
gateway_url="$(service_url v3-gateway "run deploy_gateway_v3.sh first")"
substitutions=(-e '/^#/d' -e "s#\${GATEWAY_URL}#$gateway_url#g")
for model in "${models[@]}"; do
  url="$(service_url "model-${model//_/-}" "run deploy_models_v3.sh first")"
  substitutions+=(-e "s#\${MODEL_URL_$model}#$url#g")
done
sed "${substitutions[@]}" "$script_dir/../../v3_gateway/openapi.yaml" > "$spec"
if grep -qF "\${" "$spec"; then
  echo "openapi.yaml routes a model that MODELS does not deploy:" >&2
  grep -nF "\${" "$spec" >&2
  exit 1
fi

config="v3-config-$(date +%Y%m%d-%H%M%S)"
gcloud services enable apigateway.googleapis.com servicecontrol.googleapis.com \
  servicemanagement.googleapis.com
gcloud api-gateway api-configs create "$config" \
  --api=image-classifier-v3 \
  --openapi-spec="$spec"
if gcloud api-gateway gateways describe image-classifier-v3 \
  --location="$gateway_region" >/dev/null 2>&1; then
  gcloud api-gateway gateways update image-classifier-v3 \
    --api=image-classifier-v3 --api-config="$config" --location="$gateway_region"
else
  gcloud api-gateway gateways create image-classifier-v3 \
    --api=image-classifier-v3 --api-config="$config" --location="$gateway_region"
fi
gcloud api-gateway gateways describe image-classifier-v3 \
  --location="$gateway_region" --format='value(defaultHostname)'
