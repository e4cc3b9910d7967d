"""gunicorn for tests/webservice/stopping_app.py: the settings every service shares."""

from webservice.server import ServerSettings, gunicorn_config

globals().update(gunicorn_config(ServerSettings()))
