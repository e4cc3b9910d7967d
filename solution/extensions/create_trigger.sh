#!/usr/bin/env bash
# Going further (reference solution): deploy on push with a Cloud Build
# trigger. Every push to main runs cloudbuild_deploy_backend_v1.yaml (build,
# push, deploy) as the cloudbuild-deployer account.
# Once, in the console: Cloud Build > Repositories > connect your GitHub
# repository (this installs Google's Cloud Build app on it).
# Usage, from any folder:
#   GITHUB_OWNER=you GITHUB_REPO=your-repo bash solution/extensions/create_trigger.sh
# Check: push a commit to main, then  gcloud builds list --region=northamerica-northeast1
set -euo pipefail
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"

region="northamerica-northeast1"
owner="${GITHUB_OWNER:?set GITHUB_OWNER to the GitHub user or organisation that owns the repository}"
repo="${GITHUB_REPO:?set GITHUB_REPO to the repository name on GitHub}"
# The config's path inside that repository (students: deployment/extensions/...).
config="${BUILD_CONFIG:-solution/extensions/cloudbuild_deploy_backend_v1.yaml}"
repository="${REPOSITORY:-ml-deploy}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi

bash "$script_dir/build_account.sh"

gcloud builds triggers create github \
  --name=deploy-backend-v1 \
  --region="$region" \
  --repo-owner="$owner" \
  --repo-name="$repo" \
  --branch-pattern='^main$' \
  --build-config="$config" \
  --substitutions="_REPOSITORY=$repository" \
  --service-account="projects/$project/serviceAccounts/cloudbuild-deployer@$project.iam.gserviceaccount.com"
