#!/usr/bin/env bash
# Going further (reference solution): remove everything the extension scripts
# made, and nothing the graded questions need (backend-v1, frontend-v1,
# backend-v2, frontend-v2 and the images stay). Safe to run twice: what is
# already gone is skipped.
# Usage, from any folder:  bash solution/extensions/teardown.sh
set -euo pipefail

region="northamerica-northeast1"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi
bucket="${BUCKET:-$project-models}"
models=(efficientnet_lite0 resnet18)

number="$(gcloud projects describe "$project" --format='value(projectNumber)')"
builder="cloudbuild-deployer@$project.iam.gserviceaccount.com"
github="github-actions@$project.iam.gserviceaccount.com"

# Deploy on push: the trigger, GitHub's federation (a deleted pool keeps its
# name for 30 days; `gcloud iam workload-identity-pools undelete github
# --location=global` brings it back), and the accounts' roles outside them.
gcloud builds triggers delete deploy-backend-v1 --region="$region" --quiet || true
gcloud iam workload-identity-pools providers delete github \
  --workload-identity-pool=github --location=global --quiet || true
gcloud iam workload-identity-pools delete github --location=global --quiet || true
gcloud iam service-accounts remove-iam-policy-binding \
  "$number-compute@developer.gserviceaccount.com" \
  --member="serviceAccount:$builder" --role=roles/iam.serviceAccountUser >/dev/null || true
gcloud storage buckets remove-iam-policy-binding "gs://${project}_cloudbuild" \
  --member="serviceAccount:$github" --role=roles/storage.admin >/dev/null || true
for role in roles/artifactregistry.writer roles/logging.logWriter roles/run.developer; do
  gcloud projects remove-iam-policy-binding "$project" --condition=None --role="$role" \
    --member="serviceAccount:$builder" >/dev/null || true
done
for role in roles/cloudbuild.builds.editor roles/serviceusage.serviceUsageConsumer \
  roles/logging.viewer; do
  gcloud projects remove-iam-policy-binding "$project" --condition=None --role="$role" \
    --member="serviceAccount:$github" >/dev/null || true
done

# The extra services: the private pair, the one with weights from the bucket,
# and v3 (its model services, gateway and frontend).
services=(frontend-v1-private backend-v1-private backend-v1-gcs frontend-v3 v3-gateway)
for model in "${models[@]}"; do
  services+=("model-${model//_/-}")
done
for service in "${services[@]}"; do
  gcloud run services delete "$service" --region="$region" --quiet || true
done

# The bucket with the weights, then the accounts (their bindings on deleted
# services and the bucket went with those).
gcloud storage rm --recursive "gs://$bucket" || true
for name in frontend-v1-private backend-v1-gcs v3-gateway cloudbuild-deployer github-actions; do
  gcloud iam service-accounts delete "$name@$project.iam.gserviceaccount.com" --quiet || true
done
