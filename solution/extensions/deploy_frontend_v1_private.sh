#!/usr/bin/env bash
# Going further (reference solution): frontend-v1's image as frontend-v1-private,
# calling backend-v1-private as its own service account, with an ID token on
# every call (the graded frontend-v1 and backend-v1 stay as Q3 has them).
#   1. a service account for the frontend (its identity, nothing more);
#   2. roles/run.invoker for it on backend-v1-private, and on nothing else;
#   3. the frontend deployed as that account with BACKEND_AUTH=id-token, so
#      apiclient asks the metadata server for an ID token whose audience is
#      the backend's URL and sends it as "Authorization: Bearer ...".
# Usage, from any folder, after deploy_backend_v1_private.sh:
#   bash solution/extensions/deploy_frontend_v1_private.sh
set -euo pipefail

region="northamerica-northeast1"
repository="${REPOSITORY:-ml-deploy}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi
image="$region-docker.pkg.dev/$project/$repository/frontend-v1:latest"
account="frontend-v1-private@$project.iam.gserviceaccount.com"

# 1. The frontend's own identity (created once; the script can run again).
if [[ -z "$(gcloud iam service-accounts list --filter="email=$account" --format='value(email)')" ]]; then
  gcloud iam service-accounts create frontend-v1-private \
    --display-name="frontend-v1-private: calls backend-v1-private"
fi

# 2. It may invoke backend-v1-private: a binding on that one service, not on
#    the project.
gcloud run services add-iam-policy-binding backend-v1-private \
  --region="$region" \
  --member="serviceAccount:$account" \
  --role=roles/run.invoker

backend_url="$(gcloud run services describe backend-v1-private --region="$region" \
  --format='value(status.url)')"
if [[ -z "$backend_url" ]]; then
  echo "backend-v1-private has no URL yet: run deploy_backend_v1_private.sh first" >&2
  exit 1
fi

# 3. The frontend stays public (people use it); it runs as the account above
#    and signs its calls to the backend.
gcloud run deploy frontend-v1-private \
  --image="$image" \
  --region="$region" \
  --port=8080 \
  --memory=512Mi \
  --cpu=1 \
  --max-instances=3 \
  --session-affinity \
  --allow-unauthenticated \
  --service-account="$account" \
  --set-env-vars="SERVING_URL=$backend_url,BACKEND_AUTH=id-token"
