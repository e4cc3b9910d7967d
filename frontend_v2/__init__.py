"""frontend_v2: a Streamlit page with a model picker (kept in the backend's session) and a
compare-models view."""
