#!/usr/bin/env bash
# TEMPLATE: deploy one image to Cloud Run.
#
# Copy it once per service and replace every FILL-ME:
#   deployment/deploy_backend_v1.sh   deployment/deploy_frontend_v1.sh
#   deployment/deploy_backend_v2.sh   deployment/deploy_frontend_v2.sh
# Build the image first (submit_build_<component>.sh), and deploy a backend
# before its frontend. Run it from any folder.
set -euo pipefail

region="northamerica-northeast1"
# The Artifact Registry repository the submit script pushed to.
repository="${REPOSITORY:-ml-deploy}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi

# FILL-ME: the Cloud Run service name. Names take lowercase letters, digits
# and dashes only: backend-v1 is accepted, backend_v1 is rejected.
service="FILL-ME"
# FILL-ME: the image your Cloud Build config pushed, and the tag to deploy,
# e.g. "$region-docker.pkg.dev/$project/$repository/backend-v1:latest".
image="$region-docker.pkg.dev/$project/$repository/FILL-ME"

# Frontends only: the URL of the backend this frontend calls. Asking Cloud
# Run for it (instead of pasting it) follows a redeployed backend.
# FILL-ME: uncomment in a frontend's script, with the backend's service name.
# backend_url="$(gcloud run services describe FILL-ME --region="$region" --format='value(status.url)')"

# --port          where Cloud Run sends requests; it also hands that number to
#                 the container as $PORT, which our images listen on. PORT is
#                 reserved: never set it with --set-env-vars.
# --memory/--cpu  a backend holds torch and a model (think GiB and 2 CPUs);
#                 a frontend needs far less (think 512Mi and 1 CPU).
# --allow-unauthenticated  anyone with the URL may call it (the grader too).
# --set-env-vars  NAME=value pairs, comma-separated: a frontend needs
#                 SERVING_URL=$backend_url; a backend may set MODEL_NAME.
gcloud run deploy "$service" \
  --image="$image" \
  --region="$region" \
  --port=8080 \
  --memory=FILL-ME \
  --cpu=FILL-ME \
  --allow-unauthenticated \
  --set-env-vars="FILL-ME"
