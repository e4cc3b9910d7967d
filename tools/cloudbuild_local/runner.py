"""Run a build config's steps in Cloud Build's order, printing a log shaped like Cloud Build's.

A step starts once every step it waits for has finished (concurrent steps
interleave their lines, as in Cloud Build's log). A failing step fails the
build unless allowFailure (or allowExitCodes) lets it: no further step
starts, steps still running are cancelled, and the build ends with Cloud
Build's ERROR lines. The `images:` field is pushed after every step succeeded.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from tools.cloudbuild_local.config import BuildConfig, Step


class StepHost(Protocol):
    """Where steps run: the worker (store, registry, docker command) or a test's stand-in."""

    workspace: Path
    run_dir: Path

    def step_env(self, built_in: dict[str, str]) -> dict[str, str]: ...

    def push(self, reference: str) -> tuple[int, str]: ...


@dataclass
class StepResult:
    index: int
    id: str | None
    status: str  # SUCCESS, FAILURE (allowed or not), TIMEOUT, CANCELLED, QUEUED, RECORDED
    exit_status: int | None
    seconds: float
    allowed: bool = False


@dataclass
class BuildResult:
    build_id: str
    status: str  # SUCCESS, FAILURE, TIMEOUT
    steps: list[StepResult]
    failed_step: int | None
    images: list[str]
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)


class Log:
    """Cloud Build's log lines, printed as they come, from several threads."""

    def __init__(self, sink=None) -> None:
        self._lock = threading.Lock()
        self._sink = sink

    def line(self, text: str) -> None:
        with self._lock:
            print(text, flush=True)
            if self._sink is not None:
                self._sink.write(text + "\n")
                self._sink.flush()


class Runner:
    def __init__(self, config: BuildConfig, host: StepHost, built_in: dict[str, str], log: Log):
        self.config = config
        self.host = host
        self.built_in = built_in
        self.log = log
        self._processes: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    # -- one step -----------------------------------------------------------------------
    def _command(self, step: Step) -> list[str]:
        if step.kind == "docker":
            return [str(self.host.run_dir / "bin" / "docker"), *step.args]
        if step.script is not None:
            script = self.host.run_dir / f"step-{step.index}.sh"
            script.write_text(step.script)
            return ["bash", str(script)]
        return [step.entrypoint or "bash", *step.args]

    def _env(self, step: Step) -> dict[str, str]:
        env = self.host.step_env(self.built_in)
        for pair in (*self.config.options_env, *step.env):
            key, _, value = pair.partition("=")
            env[key] = value
        env["CLOUDBUILD_LOCAL_STEP"] = str(step.index)
        return env

    def run_step(self, step: Step, deadline: float) -> StepResult:
        started = time.monotonic()
        self.log.line(f"Starting {step.label}")
        if step.kind == "gcloud":
            command = " ".join([step.entrypoint or "gcloud", *step.args])
            self.log.line(f"{step.label}: [emulation] not run: {command}")
            with (self.host.run_dir / "gcloud-steps.txt").open("a") as recorded:
                recorded.write(command + "\n")
            self.log.line(f"Finished {step.label}")
            return StepResult(step.index, step.id, "RECORDED", 0, time.monotonic() - started)
        cwd = self.host.workspace / step.dir
        process = subprocess.Popen(
            self._command(step),
            cwd=cwd,
            env=self._env(step),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # its own group: a timeout or cancel stops its children
        )
        with self._lock:
            self._processes[step.index] = process
        if self._cancelled.is_set():  # a failure came while this step was starting
            _stop(process)
        reader = threading.Thread(target=self._relay, args=(step, process), daemon=True)
        reader.start()
        limit = min(deadline, started + step.timeout) if step.timeout else deadline
        timed_out = False
        while process.poll() is None:
            if time.monotonic() > limit:
                timed_out = True
                _stop(process)
                break
            time.sleep(0.1)
        process.wait()
        reader.join(10)
        with self._lock:
            self._processes.pop(step.index, None)
        seconds = time.monotonic() - started
        self.log.line(f"Finished {step.label}")
        if self._cancelled.is_set() and process.returncode != 0:
            return StepResult(step.index, step.id, "CANCELLED", process.returncode, seconds)
        if timed_out:
            return StepResult(step.index, step.id, "TIMEOUT", process.returncode, seconds)
        if process.returncode == 0:
            return StepResult(step.index, step.id, "SUCCESS", 0, seconds)
        allowed = step.failure_allowed(process.returncode)
        return StepResult(step.index, step.id, "FAILURE", process.returncode, seconds, allowed)

    def _relay(self, step: Step, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.log.line(f"{step.label}: {line.rstrip()}")

    # -- the build ----------------------------------------------------------------------
    def run(self, build_id: str) -> BuildResult:
        started = time.monotonic()
        deadline = started + self.config.timeout
        waits = self.config.dependencies()
        steps = {step.index: step for step in self.config.steps}
        results: dict[int, StepResult] = {}
        finished: queue.Queue[StepResult] = queue.Queue()
        running: set[int] = set()
        failure: StepResult | None = None
        while len(results) < len(steps):
            if failure is None:
                for index, step in steps.items():
                    if index in results or index in running:
                        continue
                    if all(w in results and _passed(results[w]) for w in waits[index]):
                        running.add(index)
                        threading.Thread(
                            target=lambda s=step: finished.put(self._safe_run(s, deadline)),
                            daemon=True,
                        ).start()
            if not running:
                break  # nothing runs and nothing can start: a failure stopped the build
            result = finished.get()
            running.discard(result.index)
            results[result.index] = result
            if not _passed(result) and failure is None:
                failure = result
                self._cancel_running()
        for index, step in steps.items():
            results.setdefault(index, StepResult(index, step.id, "QUEUED", None, 0.0))
        ordered = [results[i] for i in sorted(results)]
        if failure is not None:
            return self._failed(build_id, ordered, failure, started)
        pushed = self._push_images(ordered, started, build_id)
        if isinstance(pushed, BuildResult):
            return pushed
        self.log.line("DONE")
        return BuildResult(build_id, "SUCCESS", ordered, None, pushed, time.monotonic() - started)

    def _safe_run(self, step: Step, deadline: float) -> StepResult:
        try:
            return self.run_step(step, deadline)
        except Exception as failed:  # a broken step must never hang the scheduler
            self.log.line(f"{step.label}: [emulation] could not run the step: {failed}")
            return StepResult(step.index, step.id, "FAILURE", None, 0.0)

    def _cancel_running(self) -> None:
        self._cancelled.set()
        with self._lock:
            processes = list(self._processes.values())
        for process in processes:
            _stop(process)

    def _failed(self, build_id, ordered, failure: StepResult, started) -> BuildResult:
        step = self.config.steps[failure.index]
        self.log.line("ERROR")
        if failure.status == "TIMEOUT":
            self.log.line(
                f'ERROR: build step {step.index} "{step.name}" failed: context deadline exceeded'
            )
            status = "TIMEOUT"
        else:
            self.log.line(
                f'ERROR: build step {step.index} "{step.name}" failed: step exited with '
                f"non-zero status: {failure.exit_status}"
            )
            status = "FAILURE"
        return BuildResult(build_id, status, ordered, failure.index, [], time.monotonic() - started)

    def _push_images(self, ordered, started, build_id):
        if not self.config.images:
            return []
        self.log.line("PUSH")
        for image in self.config.images:
            self.log.line(f"Pushing {image}")
            status, output = self.host.push(image)
            for line in output.splitlines():
                self.log.line(line)
            if status != 0:
                self.log.line("ERROR")
                self.log.line(
                    f"ERROR: failed to find one or more images after execution of build steps: "
                    f'["{image}"]'
                )
                return BuildResult(
                    build_id, "FAILURE", ordered, None, [], time.monotonic() - started
                )
        return list(self.config.images)


def _passed(result: StepResult) -> bool:
    return result.status in ("SUCCESS", "RECORDED") or (
        result.status == "FAILURE" and result.allowed
    )


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
