#!/usr/bin/env bash
# Going further (reference solution): backend-v1's image as backend-v1-gcs,
# reading its weights from a Cloud Storage bucket at start instead of the
# copy baked into the base image (the graded backend-v1 stays as it is).
#   MODEL_WEIGHTS=gs://BUCKET/resnet50.pth   the backend downloads the object
#                                            (google-cloud-storage, as its own
#                                            service account)
#   MOUNT=1: MODEL_WEIGHTS=/mnt/models/resnet50.pth, the bucket mounted as a
#            read-only Cloud Run volume (Cloud Storage FUSE): a plain file path
# Usage, from any folder, after solution/submit_build_backend_v1.sh:
#   WEIGHTS_FILE=~/.cache/torch/hub/checkpoints/resnet50-11ad3fa6.pth \
#     bash solution/extensions/deploy_backend_v1_gcs.sh
# Check: gcloud run services logs read backend-v1-gcs --region=northamerica-northeast1
#   shows where the weights came from; /models answers with the model available.
set -euo pipefail

region="northamerica-northeast1"
repository="${REPOSITORY:-ml-deploy}"
weights="${WEIGHTS_FILE:?set WEIGHTS_FILE to a resnet50 state-dict file, e.g. the one python -m classifier.prefetch resnet50 saved under ~/.cache/torch/hub/checkpoints}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi
bucket="${BUCKET:-$project-models}"
image="$region-docker.pkg.dev/$project/$repository/backend-v1:latest"
account="backend-v1-gcs@$project.iam.gserviceaccount.com"

# The bucket (once), in the services' region, and the weights in it.
if [[ -z "$(gcloud storage buckets list --filter="name=$bucket" --format='value(name)')" ]]; then
  gcloud storage buckets create "gs://$bucket" \
    --location="$region" --uniform-bucket-level-access
fi
gcloud storage cp "$weights" "gs://$bucket/resnet50.pth"

# The backend's own identity, which may read that bucket and nothing else.
if [[ -z "$(gcloud iam service-accounts list --filter="email=$account" --format='value(email)')" ]]; then
  gcloud iam service-accounts create backend-v1-gcs --display-name="backend-v1-gcs: reads the weights"
fi
gcloud storage buckets add-iam-policy-binding "gs://$bucket" \
  --member="serviceAccount:$account" --role=roles/storage.objectViewer

if [[ "${MOUNT:-0}" == 1 ]]; then
  source_flags=(
    --add-volume="name=models,type=cloud-storage,bucket=$bucket,readonly=true"
    --add-volume-mount="volume=models,mount-path=/mnt/models"
  )
  model_weights="/mnt/models/resnet50.pth"
else
  source_flags=()
  model_weights="gs://$bucket/resnet50.pth"
fi

gcloud run deploy backend-v1-gcs \
  --image="$image" \
  --region="$region" \
  --port=8080 \
  --memory=2Gi \
  --cpu=2 \
  --cpu-boost \
  --max-instances=3 \
  --allow-unauthenticated \
  --service-account="$account" \
  ${source_flags[@]+"${source_flags[@]}"} \
  --set-env-vars="MODEL_NAME=resnet50,MODEL_WEIGHTS=$model_weights"
