#!/usr/bin/env bash
# Going further (reference solution): deploy on push from GitHub Actions
# without a key file. Workload Identity Federation lets a workflow of ONE
# repository exchange GitHub's OIDC token for a short-lived Google token of
# the github-actions account, which may only submit builds (running as
# cloudbuild-deployer) and read their logs.
# Usage, from any folder:
#   GITHUB_REPOSITORY=you/your-repo bash solution/extensions/setup_github_wif.sh
# then copy deployment/deploy_on_push_workflow_template.yml to
# .github/workflows/deploy-backend-v1.yml in that repository and fill in the
# values this script prints.
set -euo pipefail
script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"

github_repository="${GITHUB_REPOSITORY:?set GITHUB_REPOSITORY=owner/name of the repository on GitHub}"
project="$(gcloud config get-value project 2>/dev/null)"
if [[ -z "$project" || "$project" == "(unset)" ]]; then
  echo "No Google Cloud project is set: run  gcloud config set project your-project-id" >&2
  exit 1
fi
number="$(gcloud projects describe "$project" --format='value(projectNumber)')"
pool="projects/$number/locations/global/workloadIdentityPools/github"
account="github-actions@$project.iam.gserviceaccount.com"

bash "$script_dir/build_account.sh"

# The pool, and GitHub as its OIDC provider. The condition admits tokens of
# this one repository only: without it, any GitHub repository could try.
gcloud iam workload-identity-pools create github \
  --location=global --display-name="GitHub Actions"
gcloud iam workload-identity-pools providers create-oidc github \
  --location=global \
  --workload-identity-pool=github \
  --display-name="GitHub" \
  --issuer-uri="https://token.actions.githubusercontent.com" \
  --attribute-mapping="google.subject=assertion.sub,attribute.repository=assertion.repository" \
  --attribute-condition="assertion.repository == '$github_repository'"

# The account the workflow becomes, and who may become it: that repository.
if [[ -z "$(gcloud iam service-accounts list --filter="email=$account" --format='value(email)')" ]]; then
  gcloud iam service-accounts create github-actions --display-name="GitHub Actions deploys"
fi
gcloud iam service-accounts add-iam-policy-binding "$account" \
  --role=roles/iam.workloadIdentityUser \
  --member="principalSet://iam.googleapis.com/$pool/attribute.repository/$github_repository"

# What it may do: submit builds, upload their source, read their logs
# (the config logs to Cloud Logging), and start them as cloudbuild-deployer.
for role in roles/cloudbuild.builds.editor roles/serviceusage.serviceUsageConsumer \
  roles/logging.viewer; do
  gcloud projects add-iam-policy-binding "$project" \
    --member="serviceAccount:$account" --role="$role" --condition=None >/dev/null
done
gcloud storage buckets add-iam-policy-binding "gs://${project}_cloudbuild" \
  --member="serviceAccount:$account" --role=roles/storage.admin >/dev/null
gcloud iam service-accounts add-iam-policy-binding \
  "cloudbuild-deployer@$project.iam.gserviceaccount.com" \
  --member="serviceAccount:$account" --role=roles/iam.serviceAccountUser >/dev/null

echo "In the workflow, set:"
echo "  PROJECT_ID: $project"
echo "  WORKLOAD_IDENTITY_PROVIDER: $pool/providers/github"
echo "  SERVICE_ACCOUNT: $account"
echo "  BUILD_SERVICE_ACCOUNT: cloudbuild-deployer@$project.iam.gserviceaccount.com"
