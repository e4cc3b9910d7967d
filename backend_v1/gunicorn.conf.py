"""gunicorn configuration for backend_v1 (and the v3 model services built from it).

One preloaded worker by default (SharedCoresServerSettings): its inference
scheduler gives a lone request every core and batches concurrent ones one core
each, which beats several workers splitting the cores.
"""

import gc
import os

# Set before the app (and torch) is imported in the master: the master loads the
# weights but never runs a parallel op, so no thread pool exists before fork.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from classifier.server_config import SharedCoresServerSettings, gunicorn_options

_server = SharedCoresServerSettings()
globals().update(gunicorn_options(_server, preload=True))


def pre_fork(server, worker):
    # Keep the preloaded objects out of the collector's reach, so that it does not
    # write to (and so copy) the pages the workers share with the master.
    gc.freeze()


def post_fork(server, worker):
    from classifier.inference import configure_threads

    configure_threads(_server.threads_per_worker)


def post_worker_init(worker):
    # Warm up and start the inference engines in each worker after the fork,
    # never in the master (threads do not survive a fork).
    worker.wsgi.extensions["model_holder"].warm_up(cores=_server.threads_per_worker)
