"""Locust load for POST /predict: closed-loop users uploading a fixed set of photos.

Driven by environment variables (bench.load sets them):
  BENCH_PHOTOS    folder of .jpg photos
  BENCH_STAGES    user counts, e.g. "1,2,4,8,16", one stage each
  BENCH_STAGE_S   seconds per stage (warm-up included; bench.load drops the warm-up)
  BENCH_OUT       JSON file for the raw samples
  BENCH_ALSO      optional "name=url,name=url": each user then takes turns between
                  the host and these base URLs, in a shuffled order, sending the
                  same photo to each, so all are compared under the same noise
                  (the gateway figure)
Each completed request is kept with its exact time (locust's own percentiles are
rounded), and each stage's start is kept, so bench.load computes throughput
and percentiles over the measured part of every stage. With BENCH_ALSO, each
turn is kept too, so bench.load can pair the paths' latencies turn by turn.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from pathlib import Path

from locust import FastHttpUser, LoadTestShape, constant, events, task

from bench.assets import MULTIPART_CONTENT_TYPE, load_photos, multipart_body

STAGES = [int(n) for n in os.environ.get("BENCH_STAGES", "1").split(",")]
STAGE_SECONDS = float(os.environ.get("BENCH_STAGE_S", "6"))
ALSO = [pair.split("=", 1) for pair in os.environ.get("BENCH_ALSO", "").split(",") if pair]
BODIES = [
    multipart_body(f"{name}.jpg", data)
    for name, data in load_photos(Path(os.environ.get("BENCH_PHOTOS", ".")))
]
HEADERS = {"Content-Type": MULTIPART_CONTENT_TYPE}
_user_ids = itertools.count()
samples: list[tuple[str, float, float, bool]] = []  # name, end time, ms, ok
stage_starts: list[tuple[float, int]] = []
turns: list[tuple[float, dict[str, float | None]]] = []  # end time, name -> ms (None: failed)
_order = random.Random(0)  # the order of the paths in each turn: no path always goes first


class PredictUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 120.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        # Users start on different photos so concurrent requests differ.
        offset = next(_user_ids)
        self.bodies = itertools.islice(itertools.cycle(BODIES), offset, None)

    @task
    def predict(self) -> None:
        body = next(self.bodies)
        if not ALSO:
            self.client.post("/predict", data=body, headers=HEADERS, name="predict")
            return
        paths = [("predict", ""), *ALSO]
        _order.shuffle(paths)
        turn: dict[str, float | None] = {}
        for name, url in paths:
            with self.client.post(
                url + "/predict", data=body, headers=HEADERS, name=name, catch_response=True
            ) as response:
                pass  # reported on leaving the block, as without catch_response
            meta = response.request_meta  # the very figures the samples keep
            turn[name] = meta["response_time"] if meta["exception"] is None else None
        turns.append((time.time(), turn))


class Stages(LoadTestShape):
    """Each user count in turn for STAGE_SECONDS, all users spawned at once."""

    def tick(self):
        index = int(self.get_run_time() // STAGE_SECONDS)
        if index >= len(STAGES):
            return None
        return STAGES[index], STAGES[index]


@events.request.add_listener
def _keep(request_type, name, response_time, response_length, exception, **_kw):
    samples.append((name, time.time(), response_time, exception is None))


@events.spawning_complete.add_listener
def _stage_started(user_count, **_kw):
    stage_starts.append((time.time(), user_count))


@events.quitting.add_listener
def _write(environment, **_kw):
    out = os.environ.get("BENCH_OUT")
    if out:
        Path(out).write_text(
            json.dumps(
                {
                    "stage_starts": stage_starts,
                    "end": time.time(),
                    "samples": samples,
                    "turns": turns,
                }
            )
        )
