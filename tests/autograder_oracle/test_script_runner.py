"""autograder/script_runner: student scripts in a throwaway copy, with a recording gcloud."""

from __future__ import annotations

import json
import time

import pytest

from autograder.script_runner import RecordedCall, run_script


def make_tree(tmp_path, scripts: dict[str, str]):
    tree = tmp_path / "submission"
    for relative, body in scripts.items():
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
    return tree


def test_records_every_call_with_its_arguments_intact(tmp_path):
    tree = make_tree(
        tmp_path,
        {"deploy.sh": 'gcloud run deploy my-svc --set-env-vars="A=1,B=two words"\ndocker push x\n'},
    )
    run = run_script("deploy.sh", tree=tree)
    assert run.exit_code == 0, run.stderr
    assert [c.command for c in run.calls] == [
        ("gcloud", "run", "deploy", "my-svc", "--set-env-vars=A=1,B=two words"),
        ("docker", "push", "x"),
    ]
    assert run.calls[0].flag("--set-env-vars") == "A=1,B=two words"
    assert "Service URL: https://my-svc-" in run.stderr  # answered like gcloud does


def test_answers_project_and_service_urls(tmp_path):
    tree = make_tree(
        tmp_path,
        {
            "s.sh": 'p="$(gcloud config get-value project)"\n'
            'u="$(gcloud run services describe backend-v1 --format="value(status.url)")"\n'
            "o=\"$(gcloud run services describe other --region r --format 'value(status.url)')\"\n"
            'echo "$p $u $o"\n'
        },
    )
    run = run_script(
        "s.sh", tree=tree, project="proj-7", service_urls={"backend-v1": "https://b.example"}
    )
    project, known, made_up = run.stdout.split()
    assert project == "proj-7"
    assert known == "https://b.example"
    assert made_up.startswith("https://other-")
    assert made_up.endswith("-nn.a.run.app")


def test_describe_in_json_format(tmp_path):
    tree = make_tree(
        tmp_path, {"s.sh": "gcloud run services describe api --region r --format json\n"}
    )
    run = run_script("s.sh", tree=tree, service_urls={"api": "https://api.example"})
    assert json.loads(run.stdout)["status"]["url"] == "https://api.example"


def test_runs_in_a_throwaway_copy_with_a_space_from_another_folder(tmp_path):
    tree = make_tree(
        tmp_path,
        {
            "deployment/s.sh": 'here="$(cd "$(dirname "$0")" && pwd)"\n'
            'echo "$PWD|$here"\ntouch "$here/made-by-script"\n'
        },
    )
    run = run_script("deployment/s.sh", tree=tree)
    cwd, here = run.stdout.strip().split("|")
    assert here.startswith(run.copy_root)
    assert " " in here
    assert not cwd.startswith(run.copy_root)
    assert not (tree / "deployment" / "made-by-script").exists()


def test_an_unquoted_path_breaks_as_it_would_for_a_student(tmp_path):
    tree = make_tree(tmp_path, {"deployment/s.sh": 'cd $(dirname "$0")/..\nls\n'})
    run = run_script("deployment/s.sh", tree=tree)
    assert run.exit_code != 0


def test_recorded_paths_point_at_the_original_files(tmp_path):
    tree = make_tree(
        tmp_path,
        {
            "deployment/s.sh": 'root="$(cd "$(dirname "$0")/.." && pwd)"\n'
            'gcloud builds submit "$root" --config="$root/deployment/c.yaml"\n'
        },
    )
    student = tmp_path / "upload" / "c.yaml"
    student.parent.mkdir()
    student.write_text("steps: []\n")
    run = run_script("deployment/s.sh", tree=tree, files={"deployment/c.yaml": student})
    [call] = run.gcloud_calls
    assert call.argv[2] == str(tree)
    assert call.flag("--config") == str(student)


def test_environment_is_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/secret/key.json")
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "/secret/token")
    tree = make_tree(tmp_path, {"s.sh": "env\n"})
    run = run_script("s.sh", tree=tree, env={"REPOSITORY": "repo-x"})
    env = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env
    assert "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE" not in env
    assert env["REPOSITORY"] == "repo-x"
    assert env["HTTPS_PROXY"].startswith("http://127.0.0.1:")
    assert env["PATH"].split(":")[0].endswith("/bin")
    assert "script-" in env["PATH"].split(":")[0]  # the stand-ins, in the run's own folder


def test_timeout_ends_the_script_and_its_children(tmp_path):
    tree = make_tree(tmp_path, {"s.sh": "sleep 60 &\nsleep 60\n"})
    started = time.monotonic()
    run = run_script("s.sh", tree=tree, timeout=1)
    assert run.timed_out
    assert run.exit_code is None
    assert time.monotonic() - started < 30
    assert "stopped after 1 s" in run.stderr


def test_failure_exit_code_and_stderr_are_reported(tmp_path):
    tree = make_tree(tmp_path, {"s.sh": 'echo "no project" >&2\nexit 3\n'})
    run = run_script("s.sh", tree=tree)
    assert run.exit_code == 3
    assert not run.succeeded
    assert "no project" in run.stderr


def test_missing_script_is_a_clear_error(tmp_path):
    tree = make_tree(tmp_path, {"other.sh": "true\n"})
    with pytest.raises(FileNotFoundError, match=r"deployment/nope\.sh"):
        run_script("deployment/nope.sh", tree=tree)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        run_script("s.sh", tree=tmp_path / "absent")


def test_recorded_call_flag_reads_both_forms():
    call = RecordedCall("gcloud", ("run", "deploy", "x", "--region", "r1", "--image=i"), "/")
    assert call.flag("--region") == "r1"
    assert call.flag("--image") == "i"
    assert call.flag("--port") is None
