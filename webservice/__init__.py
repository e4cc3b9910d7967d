"""The web side every Flask service shares, backends and gateway alike: the API's
errors as JSON, /health and /ready, request limits, server-side sessions, the
caller's model choice (GET/PUT/DELETE /model) and gunicorn's settings.

No torch and no image code here (tests/webservice checks it in a fresh
interpreter), so the gateway's image carries this package and nothing of
classifier/.
"""
