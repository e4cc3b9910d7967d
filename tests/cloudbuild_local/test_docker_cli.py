"""The docker command lines of a build step, read as the docker CLI reads them."""

import pytest

from tools.cloudbuild_local import docker_cli
from tools.cloudbuild_local.docker_cli import DockerUsageError

AR = "northamerica-northeast1-docker.pkg.dev/p/ml-deploy/backend-base:latest"
LOOPBACK = "127.0.0.1:5000"


def test_a_reference_solution_build_step():
    build = docker_cli.parse_build(
        [
            "build",
            "--file=deployment/Dockerfile.backend-base",
            f"--cache-from={AR}",
            "--build-arg=BUILDKIT_INLINE_CACHE=1",
            f"--tag={AR}",
            ".",
        ][1:]
    )
    assert build.dockerfile == "deployment/Dockerfile.backend-base"
    assert build.cache_from == [AR]
    assert build.build_args == {"BUILDKIT_INLINE_CACHE": "1"}
    assert build.tags == [AR]
    assert build.context == "."


def test_short_and_separate_forms():
    build = docker_cli.parse_build(
        ["-f", "x/Dockerfile", "-tone:1", "-t", "two:2", "--build-arg", "A", "--pull", "ctx"]
    )
    assert (build.dockerfile, build.tags, build.build_args, build.pull) == (
        "x/Dockerfile", ["one:1", "two:2"], {"A": None}, True,
    )  # fmt: skip


def test_a_misspelled_flag_fails_as_docker_fails():
    with pytest.raises(DockerUsageError) as refused:
        docker_cli.parse_build(["--buildarg=BASE_IMAGE=x", "."])
    assert refused.value.status == 125
    assert "unknown flag: --buildarg" in str(refused.value)


def test_build_needs_exactly_one_context():
    with pytest.raises(DockerUsageError, match="requires exactly 1 argument"):
        docker_cli.parse_build(["-t", "x"])


def test_push_pull_tag():
    assert docker_cli.parse_push(["--all-tags", "h/p/r/img"]) == ("h/p/r/img", True)
    assert docker_cli.parse_push(["h/p/r/img:1"]) == ("h/p/r/img:1", False)
    assert docker_cli.parse_pull(["-q", AR]) == AR
    assert docker_cli.parse_tag(["a:1", "b:2"]) == ("a:1", "b:2")


@pytest.mark.parametrize(
    ("reference", "local"),
    [
        (AR, f"{LOOPBACK}/{AR}"),
        ("gcr.io/p/img:1", f"{LOOPBACK}/gcr.io/p/img:1"),
        ("eu.gcr.io/p/img", f"{LOOPBACK}/eu.gcr.io/p/img"),
        ("python:3.11-slim-bookworm", "python:3.11-slim-bookworm"),  # Docker Hub stays
        ("docker.io/library/python:3.11", "docker.io/library/python:3.11"),
        ("localhost/stand-in/python:3.11", "localhost/stand-in/python:3.11"),
    ],
)
def test_only_google_registries_go_to_the_loopback_registry(reference, local):
    assert docker_cli.to_local(reference, LOOPBACK) == local
    assert docker_cli.to_remote(local, LOOPBACK) == reference


@pytest.mark.parametrize(
    ("reference", "parts"),
    [
        (AR, ("northamerica-northeast1-docker.pkg.dev/p/ml-deploy/backend-base", "latest")),
        ("127.0.0.1:5000/h/p/img", ("127.0.0.1:5000/h/p/img", "latest")),
        ("127.0.0.1:5000/h/p/img:v1", ("127.0.0.1:5000/h/p/img", "v1")),
        ("python", ("python", "latest")),
    ],
)
def test_repository_and_tag(reference, parts):
    assert docker_cli.repository_and_tag(reference) == parts
