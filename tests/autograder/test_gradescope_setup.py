"""The Gradescope autograder zip: its scripts, its results.json, and setup.sh on a fresh system.

Gradescope's images (Ubuntu 22.04, 24.04) cannot run here. setup.sh is checked
by shellcheck, and (marker chroot, `make test-chroot`) run for real as root in
a Debian chroot made by debootstrap, which then grades the reference solution.
What that leaves unverified is listed in docs/grader-trust.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.autograder.builders import solution_files, write_submission
from tools import handout

SHELLCHECK = Path(sys.executable).with_name("shellcheck")


@pytest.mark.parametrize("name", ["setup.sh", "run_autograder"])
def test_the_gradescope_scripts_pass_shellcheck(name, tmp_path):
    text = handout.setup_sh() if name == "setup.sh" else handout.RUN_AUTOGRADER
    script = tmp_path / name
    script.write_text(text)
    checked = subprocess.run(
        [str(SHELLCHECK), "--shell=bash", "--severity=style", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


def test_setup_installs_python_3_11_through_uv_on_either_ubuntu():
    text = handout.setup_sh()
    assert "python3.11" not in text.replace("--python 3.11", "")  # no apt python3.11 (24.04)
    assert "uv venv --quiet --python 3.11 /autograder/venv" in text
    assert f'"uv=={handout.UV_VERSION}"' in text
    assert "bubblewrap" in text
    assert "sandbox.detect().describe()" in text  # a broken sandbox fails the build


def test_the_outline_gives_the_autograder_its_automatic_points_and_sums_to_100():
    outline = handout.gradescope_outline()
    assert "| Autograder | 78 |" in outline
    for question, points in (("Q2", 4), ("Q4", 3), ("Q5", 2), ("Q7", 8), ("Q8", 5)):
        assert f"| {question} written answer | {points} |" in outline
    assert "| **total** | **100** |" in outline


@pytest.mark.chroot
@pytest.mark.slow
@pytest.mark.timeout(3600)  # debootstrap and the installs download a few hundred MB
def test_setup_sh_builds_a_working_grader_in_a_fresh_debian(tmp_path):
    if os.geteuid() != 0 or not shutil.which("debootstrap"):
        pytest.skip("needs root and debootstrap")
    root = tmp_path / "debian"
    subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(root)],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    out = tmp_path / "build"
    assert handout.main(["--out", str(out)]) == 0
    autograder = root / "autograder"
    # As Gradescope does: the zip extracted into /autograder/source, run_autograder
    # copied to /autograder/run_autograder, then setup.sh run from the source folder.
    with zipfile.ZipFile(out / "gradescope_autograder.zip") as bundle:
        bundle.extractall(autograder / "source")
    shutil.copy2(autograder / "source" / "run_autograder", autograder / "run_autograder")
    for script in (autograder / "run_autograder", autograder / "source" / "setup.sh"):
        script.chmod(0o755)
    # Offline checks only: --live would reach the solution's real service URLs.
    (autograder / "source" / "autograder_args").write_text("--no-gcloud\n")
    write_submission(autograder / "submission", solution_files(), layout="flat")
    (autograder / "results").mkdir()
    shutil.copy2("/etc/resolv.conf", root / "etc" / "resolv.conf")
    # This machine reaches the registries through a proxy with its own certificate
    # authority: the chroot trusts it as the host does (setup.sh's ca-certificates
    # install picks it up). Gradescope's images need nothing of the kind.
    local_cas = root / "usr" / "local" / "share" / "ca-certificates"
    local_cas.mkdir(parents=True, exist_ok=True)
    for certificate in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy2(certificate, local_cas / certificate.name)
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        **{name: bundle for name in ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")},
    }
    mounts = [(root / "proc", ["-t", "proc", "proc"]), (root / "dev", ["--bind", "/dev"])]
    for target, how in mounts:
        subprocess.run(["mount", *how, str(target)], check=True)
    try:
        setup = subprocess.run(
            ["chroot", str(root), "/bin/bash", "-c", "cd /autograder/source && ./setup.sh"],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]
        assert "Confinement: " in setup.stdout
        graded = subprocess.run(
            ["chroot", str(root), "/bin/bash", "-c", "cd /autograder && ./run_autograder"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        for target, _ in reversed(mounts):
            subprocess.run(["umount", "--lazy", str(target)], check=False)
    results_text = (autograder / "results" / "results.json").read_text()
    shutil.rmtree(root, ignore_errors=True)  # a few hundred MB
    results = json.loads(results_text)
    offline = [t for t in results["tests"] if "auto" in t["tags"]]
    assert sum(t["score"] for t in offline) == 74, graded.stdout[-3000:]
    assert results["extra_data"]["confinement"]["level"] in ("bwrap", "user")
