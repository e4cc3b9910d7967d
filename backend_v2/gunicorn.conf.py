"""gunicorn configuration for backend_v2, the same as backend_v1's.

Every setting comes from the environment: classifier/model_server.py says how a
model server runs, webservice/server.py what each worker does before it serves.
"""

from classifier.model_server import ModelServerSettings
from webservice.server import gunicorn_config

globals().update(gunicorn_config(ModelServerSettings()))
