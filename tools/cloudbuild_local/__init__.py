"""Cloud Build configs run on this machine as Cloud Build runs them (make cloudbuild-local)."""
