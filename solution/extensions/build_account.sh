#!/usr/bin/env bash
# Going further (reference solution): the service account deploy-on-push
# builds run as, shared by the Cloud Build trigger (create_trigger.sh)
# and the GitHub Actions workflow (setup_github_wif.sh). It may push images,
# write logs and deploy to Cloud Run, acting as the services' runtime account;
# nothing else. Run by those two scripts; running it again changes nothing.
set -euo pipefail

project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi
builder="cloudbuild-deployer@$project.iam.gserviceaccount.com"

if [[ -z "$(gcloud iam service-accounts list --filter="email=$builder" --format='value(email)')" ]]; then
  gcloud iam service-accounts create cloudbuild-deployer \
    --display-name="Builds, pushes and deploys on push"
fi
for role in roles/artifactregistry.writer roles/logging.logWriter roles/run.developer; do
  gcloud projects add-iam-policy-binding "$project" \
    --member="serviceAccount:$builder" --role="$role" --condition=None >/dev/null
done
# Deploying a service means starting it as its runtime account: the
# Compute Engine default account, which the assignment's services run as.
number="$(gcloud projects describe "$project" --format='value(projectNumber)')"
gcloud iam service-accounts add-iam-policy-binding \
  "$number-compute@developer.gserviceaccount.com" \
  --member="serviceAccount:$builder" --role=roles/iam.serviceAccountUser >/dev/null
