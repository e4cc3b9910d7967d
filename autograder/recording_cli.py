"""A stand-in for gcloud, docker, curl and wget that records how it was called.

script_runner puts one small wrapper per program first on PATH; each runs
`python recording_cli.py <program> <args...>`. This script appends one JSON
line {"program", "argv", "cwd"} to $RECORDER_LOG, then answers the read-only
questions deployment scripts ask, so they can go on:

  gcloud config get-value project | config get project   -> $RECORDER_PROJECT
  gcloud config get-value account                          -> a student address
  gcloud config get-value run/region (or another region)  -> the assignment's region
  gcloud projects describe ... --format value(projectNumber)
  gcloud run services describe NAME --format 'value(status.url)' (or json/yaml)
  gcloud run deploy NAME ...   -> prints the service URL, as gcloud does
  gcloud auth print-access-token | print-identity-token   -> a fake token

The URL of a service is taken from $RECORDER_SERVICE_URLS (a JSON object,
name -> URL) when it names it, else made up the way Cloud Run makes them:
https://<name>-<project hash>-nn.a.run.app. Everything else succeeds silently.
Nothing here talks to a network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys

REGION = "northamerica-northeast1"
REGION_CODE = "nn"
STUDENT_ACCOUNT = "student@example.com"
PROJECT_NUMBER = "123456789012"


def service_url(name: str, project: str) -> str:
    """A plausible, stable Cloud Run URL for service `name` in `project`."""
    known = json.loads(os.environ.get("RECORDER_SERVICE_URLS") or "{}")
    if name in known:
        return known[name]
    # Cloud Run's hash belongs to the project: every service of a project shares it.
    digest = hashlib.sha256(project.encode()).digest()
    tag = base64.b32encode(digest).decode().lower()[:10]
    return f"https://{name}-{tag}-{REGION_CODE}.a.run.app"


def record(program: str, argv: list[str]) -> None:
    log = os.environ.get("RECORDER_LOG")
    if not log:
        return
    line = json.dumps({"program": program, "argv": argv, "cwd": os.getcwd()}) + "\n"
    # One write with O_APPEND, so calls from background jobs never interleave.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


if __package__:
    from autograder.shell_words import gcloud_words as _positionals
else:  # run as a script by script_runner's wrappers (perhaps with -I): import its neighbour
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from shell_words import gcloud_words as _positionals


def _flag(argv: list[str], name: str) -> str | None:
    for index, word in enumerate(argv):
        if word == name and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def answer_gcloud(argv: list[str]) -> tuple[str, str]:
    """(stdout, stderr) for a recorded gcloud call."""
    project = _flag(argv, "--project") or os.environ.get("RECORDER_PROJECT", "student-project")
    words = _positionals(argv)
    fmt = _flag(argv, "--format") or ""
    if words[:2] in (["config", "get-value"], ["config", "get"]) and len(words) > 2:
        prop = words[2].split("/")[-1]
        values = {"project": project, "account": STUDENT_ACCOUNT, "region": REGION}
        values["location"] = REGION
        return values.get(prop, "") + "\n", ""
    if words[:2] == ["config", "list"] and "project" in fmt:
        return project + "\n", ""
    if words[:2] == ["projects", "describe"]:
        if "projectNumber" in fmt:
            return PROJECT_NUMBER + "\n", ""
        return json.dumps({"projectId": project, "projectNumber": PROJECT_NUMBER}) + "\n", ""
    if words[:2] == ["auth", "list"] and "account" in fmt:
        return STUDENT_ACCOUNT + "\n", ""
    if words[:1] == ["auth"] and words[1:2] in (["print-access-token"], ["print-identity-token"]):
        return "recorded-fake-token\n", ""
    run_words = [word for word in words if word not in ("alpha", "beta")]
    if run_words[:3] == ["run", "services", "describe"] and len(run_words) > 3:
        url = service_url(run_words[3], project)
        if "url" in fmt.lower() and fmt.startswith("value"):
            return url + "\n", ""
        if fmt.startswith("json"):
            body = {"metadata": {"name": run_words[3]}, "status": {"url": url}}
            return json.dumps(body) + "\n", ""
        return f"metadata:\n  name: {run_words[3]}\nstatus:\n  url: {url}\n", ""
    if run_words[:2] == ["run", "deploy"] and len(run_words) > 2:
        name = run_words[2]
        url = service_url(name, project)
        return "", (
            f"Service [{name}] revision [{name}-00001-rec] has been deployed "
            f"and is serving 100 percent of traffic.\nService URL: {url}\n"
        )
    return "", ""


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: recording_cli.py PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    program, args = argv[0], argv[1:]
    record(program, args)
    if program == "gcloud":
        out, err = answer_gcloud(args)
        sys.stdout.write(out)
        sys.stderr.write(err)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
