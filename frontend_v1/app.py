"""frontend_v1: classify one image (URL or upload) with the backend at SERVING_URL.

Run: `make serve SERVICE=frontend_v1 PORT=8501` with SERVING_URL set.
"""

from __future__ import annotations

import streamlit as st

from apiclient import ApiClientError, ui
from frontend_v1.settings import FrontendV1Settings

RESULT_KEY = "v1_outcome"

st.set_page_config(page_title="Image classifier v1", page_icon="🖼️")
st.title("Image classifier")

settings = FrontendV1Settings()
try:
    client = ui.session_client(settings)
    models = ui.fetch_models(client, settings.models_ttl_seconds)
except ApiClientError as error:
    ui.stop_and_retry(error, settings.backend_retry_seconds)  # shows why; tries again

served = ", ".join(m.get("name", "?") for m in models) or "no model listed"
st.caption(f"Backend {client.base_url} serves: {served}")
top_k = st.sidebar.slider("Predictions to show", 1, 10, min(settings.default_top_k, 10))

choice = ui.image_input("v1", settings.max_upload_bytes)
clicked = st.button("Classify", key="v1-classify", type="primary", disabled=choice is None)
if clicked and choice is not None:
    with st.spinner("Classifying..."):
        st.session_state[RESULT_KEY] = ui.timed_call(
            choice.key, lambda: choice.predict(client, model=None, top_k=top_k)
        )

outcome = st.session_state.get(RESULT_KEY)
if outcome is not None and choice is not None and outcome.image_key == choice.key:
    ui.render_outcome(outcome)
