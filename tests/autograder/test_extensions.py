"""Going-further files: listed after the score with what they do, never graded, never run."""

from __future__ import annotations

import json
import os

import pytest

from autograder import extensions
from tests.autograder.builders import REPO_ROOT, solution_files
from tests.autograder.test_pytest_plugin import run_grader

REFERENCE = REPO_ROOT / "solution" / "extensions"
WORKFLOW = REPO_ROOT / "deployment" / "deploy_on_push_workflow_template.yml"


def reference_extensions() -> dict[str, str]:
    files = {
        f"deployment/extensions/{path.name}": path.read_text()
        for path in sorted(REFERENCE.iterdir())
        if path.is_file()
    }
    files[".github/workflows/deploy-backend-v1.yml"] = WORKFLOW.read_text()
    return files


def feedback_for(root, layout="repo") -> str:
    return extensions.feedback_text(*extensions.review(root, layout))


def test_the_reference_extensions_are_each_described(tmp_path):
    for relative, text in reference_extensions().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    text = feedback_for(tmp_path)
    assert text.startswith(extensions.HEADING)
    assert "- deployment/extensions/deploy_backend_v1_private.sh (shell script)\n" in text
    assert "deploys backend-v1-private: private (--no-allow-unauthenticated)" in text
    assert "grants roles/run.invoker on backend-v1-private to serviceAccount:$account" in text
    assert "calls its backend with ID tokens" in text
    assert "- deployment/extensions/cloudbuild_deploy_backend_v1.yaml (Cloud Build config)" in text
    assert "deploys to Cloud Run (builder gcr.io/google.com/cloudsdktool/cloud-sdk:slim)" in text
    assert "creates a Cloud Build trigger" in text
    assert "sets up Workload Identity Federation" in text
    assert "- .github/workflows/deploy-backend-v1.yml (GitHub Actions workflow)" in text
    assert "signs in with Workload Identity Federation" in text
    assert "hint: still holds FILL-ME placeholders" in text
    # The reference itself needs no other hint.
    assert text.count("hint:") == 1


def test_nothing_to_say_without_extension_files(tmp_path):
    (tmp_path / "deployment").mkdir()
    assert feedback_for(tmp_path) == ""
    assert feedback_for(REPO_ROOT) == ""  # the master repository has none


def write(root, relative, text):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_hints_for_the_usual_slips(tmp_path):
    write(
        tmp_path,
        "deployment/extensions/private.sh",
        "gcloud run deploy backend-v1 --image=x --no-allow-unauthenticated\n",
    )
    write(
        tmp_path,
        "deployment/extensions/cloudbuild_deploy.yaml",
        "steps:\n- name: gcr.io/cloud-builders/gcloud\n"
        "  args: [run, deploy, backend-v1, --image=x]\n",
    )
    write(
        tmp_path,
        ".github/workflows/deploy.yml",
        "on: push\njobs:\n  d:\n    runs-on: ubuntu-latest\n    steps:\n"
        "    - uses: google-github-actions/auth@v2\n      with:\n"
        "        workload_identity_provider: projects/1/x\n",
    )
    write(
        tmp_path,
        ".github/workflows/key.yml",
        "on: [push]\njobs:\n  d:\n    runs-on: ubuntu-latest\n    steps:\n"
        "    - uses: google-github-actions/auth@v2\n      with:\n"
        "        credentials_json: ${{ secrets.KEY }}\n",
    )
    text = feedback_for(tmp_path)
    assert "this makes backend-v1 private, but Q3/Q6 grade backend-v1 as a public service" in text
    assert "e.g. backend-v1-private" in text
    assert "needs `options: logging: CLOUD_LOGGING_ONLY`" in text
    assert "Workload Identity Federation needs `permissions: id-token: write`" in text
    assert "signs in with a key file" in text


def test_hostile_files_are_listed_never_followed_run_or_read_whole(tmp_path):
    extension_dir = tmp_path / "deployment" / "extensions"
    extension_dir.mkdir(parents=True)
    secret = tmp_path.parent / f"{tmp_path.name}-outside.sh"
    secret.write_text("gcloud run deploy stolen-secret --image=x\n")
    os.symlink(secret, extension_dir / "link.sh")
    os.symlink(tmp_path.parent, extension_dir / "linked-folder")
    marker = tmp_path / "ran"
    write(extension_dir, "run_me.sh", f"#!/bin/bash\ntouch {marker}\n")
    (extension_dir / "huge.sh").write_bytes(b"#" * (extensions.MAX_BYTES + 1))
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    write(extension_dir, "bomb.yaml", bomb)
    write(extension_dir, "quotes.sh", "gcloud run deploy 'unterminated\n")
    write(extension_dir, "bad\x1b[31mname.sh", "echo hi\n")
    (extension_dir / "binary.yaml").write_bytes(b"\xff\xfe\x00steps: [\x00")
    deep = extension_dir.joinpath(*["d"] * 10)
    write(deep, "deep.sh", "gcloud run deploy deep --image=x\n")

    notes, truncated = extensions.review(tmp_path, "repo")
    text = extensions.feedback_text(notes, truncated)

    listed = {note.path for note in notes}
    assert "deployment/extensions/link.sh" not in listed
    assert "stolen-secret" not in text
    assert not any("linked-folder" in path for path in listed)
    assert "deep" not in text  # deeper than MAX_DEPTH folders
    assert not marker.exists()
    assert f"not read: {extensions.MAX_BYTES + 1} bytes is too large" in text
    assert "bomb.yaml (YAML file)\n    hint: could not be read: the YAML uses anchors" in text
    assert "could not be read as shell" in text
    assert "bad?[31mname.sh" in text  # no escape sequence reaches the terminal
    assert "\x1b" not in text
    assert "binary.yaml" in text


def test_a_folder_of_many_files_is_cut_short_and_says_so(tmp_path):
    for index in range(extensions.MAX_FILES + 10):
        write(tmp_path, f"deployment/extensions/s{index:03}.sh", "echo\n")
    notes, truncated = extensions.review(tmp_path, "repo")
    assert truncated
    assert len(notes) == extensions.MAX_FILES
    assert f"(only the first {extensions.MAX_FILES} files are listed)" in (
        extensions.feedback_text(notes, truncated)
    )


def test_a_flat_upload_finds_extensions_folders_anywhere(tmp_path):
    write(tmp_path, "my upload/extensions/private.sh", "gcloud run deploy backend-v1-p --image=x\n")
    write(tmp_path, "my upload/.github/workflows/w.yml", "on: push\njobs: {}\n")
    write(tmp_path, "my upload/deploy_backend_v1.sh", "gcloud run deploy backend-v1 --image=x\n")
    notes, _ = extensions.review(tmp_path, "flat")
    assert [note.path for note in notes] == [
        "my upload/.github/workflows/w.yml",
        "my upload/extensions/private.sh",
    ]


@pytest.mark.slow
def test_extension_files_change_no_score_and_reach_the_report(grader, oracle_cache, tmp_path):
    files = {**solution_files(), **reference_extensions()}
    # An extension that would break the graded backend: feedback, no deduction.
    files["deployment/extensions/oops.sh"] = (
        '#!/usr/bin/env bash\nrm -rf "$HOME"\n'
        "gcloud run deploy backend-v1 --image=x --no-allow-unauthenticated\n"
    )
    folder = grader.write(files, name="with-extensions")
    result = run_grader(
        "--submission", folder, "--results-json", tmp_path / "results.json",
        "--oracle-cache", oracle_cache, "--no-gcloud",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    # The solution's score without --live, as without extensions (test_pytest_plugin).
    assert data["score"] == 74
    questions = data["extra_data"]["questions"]
    assert (questions["Q1"]["score"], questions["Q3"]["score"]) == (46, 10)
    graded = [test for test in data["tests"] if "status" in test]
    assert sum(t["max_score"] for t in graded) == sum(t["score"] for t in graded) == 74
    [entry] = [test for test in data["tests"] if test["number"] == "extensions"]
    assert not {"score", "max_score", "status"} & set(entry)  # neutral: information only
    assert "this makes backend-v1 private" in entry["output"]
    assert extensions.HEADING in result.stdout
    assert "- deployment/extensions/oops.sh (shell script)" in result.stdout
