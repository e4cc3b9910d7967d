"""gunicorn configuration for the v3 gateway.

Preloaded: the app is made once in the master, so every worker shares one
SECRET_KEY. Nothing in the master opens a socket
to a model service: each request thread makes its own libcurl handle, with its
connections, on first use after the fork (v3_gateway/transport.py).
"""

from v3_gateway.settings import GatewayServerSettings
from webservice.server import gunicorn_config

globals().update(gunicorn_config(GatewayServerSettings()))
