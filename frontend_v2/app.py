"""frontend_v2: pick a model (kept in the backend's session), classify an image, or
compare every available model on one image.

Run: `make serve SERVICE=frontend_v2 PORT=8502` with SERVING_URL set.
"""

from __future__ import annotations

import streamlit as st

from apiclient import ApiClientError, ui
from frontend_v2 import compare
from frontend_v2.session_model import (
    ModelEntry,
    backend_keeps_sessions,
    forget_server_model,
    send_choice,
    server_model,
    why_another_model,
)
from frontend_v2.settings import FrontendV2Settings

CHOICE_KEY = "v2_model_choice"
CLASSIFY_KEY = "v2_outcome"
COMPARE_KEY = "v2_comparison"

st.set_page_config(page_title="Image classifier v2", page_icon="🖼️", layout="wide")
st.title("Image classifier: choose your model")

settings = FrontendV2Settings()
try:
    client = ui.session_client(settings)
    models = [ModelEntry.from_json(m) for m in ui.fetch_models(client, settings.models_ttl_seconds)]
    held = server_model(client, models)
except ApiClientError as error:
    ui.stop_and_retry(error, settings.backend_retry_seconds)  # shows why; tries again
if not models:
    st.error(f"The backend at {client.base_url} lists no models in GET /models.")
    st.stop()

by_name = {m.name: m for m in models}
if st.session_state.get(CHOICE_KEY) not in by_name:
    st.session_state[CHOICE_KEY] = held if held in by_name else next(iter(by_name))
chosen = st.sidebar.selectbox(
    "Model", list(by_name), key=CHOICE_KEY, format_func=lambda name: by_name[name].label
)
entry = by_name[chosen]
unavailable = [m.name for m in models if not m.available]
if unavailable:
    st.sidebar.caption(f"Not available on this backend: {', '.join(unavailable)}.")
usable = entry.available
if not usable:
    st.sidebar.warning(f"{chosen} is not available on this backend. Pick another model.")
    st.sidebar.caption(f"Why: {entry.reason}")
else:
    try:
        if send_choice(client, chosen):
            st.sidebar.success(f"The backend now uses {chosen} for your session.")
    except ApiClientError as error:
        usable = False
        ui.render_error(error)
if entry.description:
    st.sidebar.caption(entry.description)
if not backend_keeps_sessions():
    st.sidebar.info("This backend keeps no sessions; the model is named in each request.")
top_k = st.sidebar.slider("Predictions to show", 1, 10, min(settings.default_top_k, 10))
st.caption(f"Backend: {client.base_url}")

choice = ui.image_input("v2", settings.max_upload_bytes)
classify_tab, compare_tab = st.tabs(["Classify", "Compare models"])

with classify_tab:
    clicked = st.button(
        "Classify", key="v2-classify", type="primary", disabled=choice is None or not usable
    )
    if clicked and choice is not None:
        # With sessions, the backend applies the session's model: that is what v2 shows.
        model = None if backend_keeps_sessions() else chosen
        with st.spinner(f"Classifying with {chosen}..."):
            outcome = ui.timed_call(
                choice.key, lambda: choice.predict(client, model=model, top_k=top_k)
            )
        st.session_state[CLASSIFY_KEY] = (outcome, chosen)
        if outcome.result and outcome.result.get("model") != chosen:
            forget_server_model()  # ask the backend again, and resend the choice, next run
    if CLASSIFY_KEY in st.session_state:
        outcome, expected = st.session_state[CLASSIFY_KEY]
        if choice is not None and outcome.image_key == choice.key:
            answered = (outcome.result or {}).get("model")
            if answered and answered != expected:
                why = why_another_model((outcome.result or {}).get("selected_by"))
                st.warning(
                    f"You chose {expected} but the backend answered with {answered}{why} "
                    "Your choice is sent again on the next action."
                )
            ui.render_outcome(outcome)

with compare_tab:
    available = [m.name for m in models if m.available]
    st.write(f"One image through every available model: {', '.join(available) or 'none'}.")
    clicked = st.button(
        "Compare models", key="v2-compare", disabled=choice is None or not available
    )
    if clicked and choice is not None:
        with st.spinner(f"Running {len(available)} models..."):
            st.session_state[COMPARE_KEY] = (
                choice.key,
                compare.run_all(client, choice, available, top_k),
            )
    comparison = st.session_state.get(COMPARE_KEY)
    if comparison is not None and choice is not None and comparison[0] == choice.key:
        compare.render(comparison[1])
