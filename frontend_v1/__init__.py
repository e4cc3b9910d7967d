"""frontend_v1: a Streamlit page that sends one image to the backend at SERVING_URL."""
