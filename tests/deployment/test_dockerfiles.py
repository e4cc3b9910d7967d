"""The Dockerfiles, checked without a Docker engine: lint, build context, contract."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from docker.utils.build import exclude_paths
from packaging.requirements import Requirement

from autograder import gcloud_oracle
from tests.deployment import kit

HADOLINT = kit.REPO_ROOT / ".venv" / "bin" / "hadolint"
HADOLINT_CONFIG = kit.REPO_ROOT / ".hadolint.yaml"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Local packages an image may carry: the shared code and the component folders.
CODE_FOLDERS = {"classifier", "webservice", "apiclient", *kit.COMPONENTS}
IMAGE_REQUIREMENTS = ["torch.txt", "serving.txt", "frontend.txt", "gateway.txt"]


def app_components():
    return [pytest.param(c, id=c.name) for c in kit.COMPONENTS.values()]


# --- lint ----------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", kit.ALL_DOCKERFILES)
def test_hadolint_passes(dockerfile):
    result = subprocess.run(
        [str(HADOLINT), "--config", str(HADOLINT_CONFIG), "--no-color", dockerfile],
        cwd=kit.REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_hadolint_fails_the_strictest_threshold_and_every_ignore_says_why():
    config = yaml.safe_load(HADOLINT_CONFIG.read_text())
    assert config["failure-threshold"] == "info"
    lines = HADOLINT_CONFIG.read_text().splitlines()
    for rule in config.get("ignored") or []:
        line = next(i for i, text in enumerate(lines) if rule in text and "#" not in text[:3])
        commented = "#" in lines[line] or lines[line - 1].lstrip().startswith("#")
        assert commented, f"ignored rule {rule} in .hadolint.yaml has no comment saying why"


def test_hadolint_really_lints_with_this_config(tmp_path):
    """The lint test can fail: an unpinned apt-get install is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run(
        [str(HADOLINT), "--config", str(HADOLINT_CONFIG), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3008" in result.stdout


# --- app images: FROM the base, code only, non-root, $PORT -----------------------------


@pytest.mark.parametrize("component", app_components())
def test_app_image_starts_from_the_base_image_build_argument(component):
    steps = kit.instructions(component.dockerfile)
    froms = [s for s in steps if s["instruction"] == "FROM"]
    assert [s["value"].strip() for s in froms] == ["${BASE_IMAGE}"]
    arg_lines = [s["startline"] for s in steps if s["instruction"] == "ARG"]
    arg_values = [s["value"].strip() for s in steps if s["instruction"] == "ARG"]
    assert "BASE_IMAGE" in arg_values, "declare ARG BASE_IMAGE (no default: the build names it)"
    assert min(arg_lines) < froms[0]["startline"], "ARG BASE_IMAGE must come before FROM"


@pytest.mark.parametrize("component", app_components())
def test_app_image_adds_only_code(component):
    steps = kit.instructions(component.dockerfile)
    allowed = {"ARG", "FROM", "WORKDIR", "COPY", "USER", "ENV", "EXPOSE", "CMD", "LABEL"}
    extra = [s["instruction"] for s in steps if s["instruction"] not in allowed]
    assert not extra, f"{component.dockerfile} should add code only; found {extra}"
    for sources, _dest in kit.copies(component.dockerfile):
        for source in sources:
            top = source.rstrip("/").split("/")[0]
            assert top in CODE_FOLDERS, f"COPY {source}: not code (requirements go in the base)"


@pytest.mark.parametrize("component", app_components())
def test_image_runs_as_a_non_root_user(component):
    users = [
        s["value"].strip()
        for dockerfile in (component.base_dockerfile, component.dockerfile)
        for s in kit.instructions(dockerfile)
        if s["instruction"] == "USER"
    ]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"the last USER is {users[-1]}"
    base_steps = kit.instructions(component.base_dockerfile)
    created = " ".join(s["value"] for s in base_steps if s["instruction"] == "RUN")
    assert f"--uid {user}" in created, f"USER {user} is never created in the base"


@pytest.mark.parametrize("component", app_components())
def test_image_listens_on_port_with_an_exec_form_cmd(component):
    env = kit.image_env(component)
    assert env.get("PORT") == "8080", "ENV PORT=8080: Cloud Run's default, overridden by it"
    exposes = [
        s["value"].split()
        for s in kit.instructions(component.dockerfile)
        if s["instruction"] == "EXPOSE"
    ]
    assert exposes == [[env["PORT"]]]
    cmd = json.loads(kit.parse(component.dockerfile).cmd)
    if component.kind == "streamlit":
        assert cmd[:2] == ["sh", "-c"]
        assert cmd[2].startswith("exec streamlit run ")
        assert '--server.port="$PORT"' in cmd[2]
        assert f"{component.name}/app.py" in cmd[2]
    else:
        config = f"{component.name}/gunicorn.conf.py"
        assert cmd == ["gunicorn", "--config", config, f"{component.name}.app:create_app()"]


def test_cmds_match_tools_serve_sh():
    """The local runner and the images start each component the same way."""
    serve = (kit.REPO_ROOT / "tools" / "serve.sh").read_text()
    assert 'gunicorn --config "$component/gunicorn.conf.py" "$component.app:create_app()"' in serve
    assert '--server.port="$PORT"' in serve


# --- build context ----------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", kit.ALL_DOCKERFILES)
def test_every_copy_source_exists_in_the_build_context(dockerfile):
    for sources, _dest in kit.copies(dockerfile):
        for source in sources:
            path = source.rstrip("/")
            assert (kit.REPO_ROOT / path).exists(), f"{dockerfile}: COPY {source}: no such path"
            assert path in kit.build_context(), f"{dockerfile}: COPY {source}: .dockerignore'd"


def test_build_context_leaves_out_environments_tests_and_caches():
    context = kit.build_context()
    for left_out in (".git", ".venv", "tests", "autograder", "bench", "solution", ".ci"):
        assert not any(p == left_out or p.startswith(left_out + "/") for p in context), left_out
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in context)
    size = sum((kit.REPO_ROOT / p).stat().st_size for p in context if (kit.REPO_ROOT / p).is_file())
    assert size < 2_000_000, f"the build context holds {size} bytes"


def plant_decoys(root):
    for relative in (*kit.SECRET_DECOYS, *kit.NOT_SECRETS):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text('{"private_key": "decoy"}')


def test_dockerignore_keeps_secrets_out(tmp_path):
    """Key files anywhere in the tree stay out of the context, the usual names included."""
    plant_decoys(tmp_path)
    context = set(exclude_paths(str(tmp_path), list(kit.dockerignore_patterns())))
    assert context >= set(kit.NOT_SECRETS)
    assert not context & set(kit.SECRET_DECOYS), sorted(context & set(kit.SECRET_DECOYS))


@pytest.mark.gcloud
@pytest.mark.skipif(not gcloud_oracle.gcloud_available(), reason="gcloud is not installed")
def test_gcloudignore_keeps_secrets_out_of_the_upload(tmp_path):
    for ignore_file in (".gcloudignore", ".gitignore"):
        (tmp_path / ignore_file).write_bytes((kit.REPO_ROOT / ignore_file).read_bytes())
    plant_decoys(tmp_path)
    uploaded = set(gcloud_oracle.list_files_for_upload(tmp_path))
    assert uploaded >= set(kit.NOT_SECRETS)
    assert not uploaded & set(kit.SECRET_DECOYS), sorted(uploaded & set(kit.SECRET_DECOYS))


@pytest.mark.gcloud
@pytest.mark.skipif(not gcloud_oracle.gcloud_available(), reason="gcloud is not installed")
def test_gcloud_uploads_what_the_images_copy_and_nothing_private():
    uploaded = set(gcloud_oracle.list_files_for_upload(kit.REPO_ROOT))
    for private in (".venv/", "tests/", "solution/", "autograder/", ".git/"):
        assert not any(p.startswith(private) for p in uploaded), private
    for dockerfile in kit.ALL_DOCKERFILES:
        assert dockerfile in uploaded
        for sources, _dest in kit.copies(dockerfile):
            for source in sources:
                path = source.rstrip("/")
                assert path in uploaded or any(p.startswith(path + "/") for p in uploaded), path


# --- the code each image needs is in it --------------------------------------------------


@pytest.mark.parametrize("component", app_components())
def test_image_holds_every_module_its_code_imports(component):
    if not component.entry.is_file():
        pytest.skip(f"{component.name}/app.py is not written yet")
    local, third_party = kit.import_closure(component)
    copied = {s.rstrip("/") for sources, _ in kit.copies(component.dockerfile) for s in sources}
    missing = sorted(f for f in local if not any(f.startswith(c + "/") for c in copied))
    assert not missing, f"{component.dockerfile} does not COPY {missing}"
    unused = copied - {f.split("/")[0] for f in local}
    assert not unused, (
        f"{component.dockerfile} copies {sorted(unused)}, which its code never imports"
    )
    installed = kit.distribution_closure(component.requirements)
    unprovided = sorted(m for m in third_party if not kit.distributions_of(m) & installed)
    assert not unprovided, f"imported but not installed by {component.requirements}: {unprovided}"


@pytest.mark.parametrize("requirements", [("frontend.txt",), ("gateway.txt",)])
def test_light_images_carry_no_torch(requirements):
    installed = kit.distribution_closure(requirements)
    assert not installed & {"torch", "torchvision", "triton"}


def test_frontend_images_copy_no_serving_code():
    for name in ("frontend_v1", "frontend_v2"):
        copied = {s for sources, _ in kit.copies(kit.COMPONENTS[name].dockerfile) for s in sources}
        assert "classifier/" not in copied
        assert "webservice/" not in copied


# --- base images ------------------------------------------------------------------------


def _run_text(dockerfile: str) -> str:
    return "\n".join(s["value"] for s in kit.instructions(dockerfile) if s["instruction"] == "RUN")


def test_backend_base_installs_cpu_torch_at_the_pinned_versions():
    base = kit.parse(kit.BACKEND_BASE)
    pins = {
        Requirement(line).name: Requirement(line) for line in kit.requirement_lines("torch.txt")
    }
    assert base.args["TORCH_INDEX_URL"] == CPU_INDEX
    # The +cpu local version exists only on the CPU index: no fallback to CUDA wheels.
    assert base.args["TORCH_LOCAL_VERSION"] == "+cpu"
    assert f"=={base.args['TORCH_VERSION']}" == str(pins["torch"].specifier)
    assert f"=={base.args['TORCHVISION_VERSION']}" == str(pins["torchvision"].specifier)
    run = _run_text(kit.BACKEND_BASE)
    assert 'PIP_EXTRA_INDEX_URL="${TORCH_INDEX_URL}" pip install' in run
    assert '"torch==${TORCH_VERSION}${TORCH_LOCAL_VERSION}"' in run
    assert '"torchvision==${TORCHVISION_VERSION}${TORCH_LOCAL_VERSION}"' in run
    assert "-r requirements/locks/serving.txt" in run


def test_backend_base_bakes_every_downloadable_catalog_model():
    from classifier.models import CATALOG

    base = kit.parse(kit.BACKEND_BASE)
    downloadable = {name for name, spec in CATALOG.items() if spec.torchvision_weights}
    assert set(base.args["PREFETCH_MODELS"].split()) == downloadable
    assert base.envs["TORCH_HOME"] == "/opt/torch"
    assert "python -m classifier.prefetch ${PREFETCH_MODELS}" in _run_text(kit.BACKEND_BASE)


def test_backend_base_copies_exactly_what_prefetch_imports():
    """Only the catalog reaches the base; the rest of the serving code stays out."""
    staged = {
        source
        for sources, dest in kit.copies(kit.BACKEND_BASE)
        if dest.startswith("/opt/")
        for source in sources
    }
    needed, _ = kit.import_closure_of([kit.REPO_ROOT / "classifier" / "prefetch.py"])
    assert staged == needed


@pytest.mark.slow
def test_weights_step_runs_with_only_packaged_weights(tmp_path):
    """The base's weights step, run as the build runs it (its paths moved under a scratch
    folder), with PREFETCH_MODELS naming only a model whose weights ship in its package:
    nothing is downloaded, and the step still succeeds and leaves nothing in /tmp."""
    step = next(
        s["value"]
        for s in kit.instructions(kit.BACKEND_BASE)
        if s["instruction"] == "RUN" and "classifier.prefetch" in s["value"]
    )
    for sources, dest in kit.copies(kit.BACKEND_BASE):
        if dest.startswith("/opt/prefetch/"):
            staged = tmp_path / dest.lstrip("/")
            staged.mkdir(parents=True)
            for source in sources:
                (staged / source.split("/")[-1]).write_bytes((kit.REPO_ROOT / source).read_bytes())
    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir()
    command = step.replace("/tmp/", f"{scratch_tmp}/")  # first: tmp_path is under /tmp too
    command = command.replace("/opt/prefetch", str(tmp_path / "opt" / "prefetch"))
    env = {
        "PATH": f"{HADOLINT.parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TMPDIR": str(scratch_tmp),
        "TORCH_HOME": str(tmp_path / "opt" / "torch"),
        "PREFETCH_MODELS": "efficientnet_lite0",
    }
    result = subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "opt" / "torch").is_dir()
    assert not (tmp_path / "opt" / "prefetch").exists()
    assert list(scratch_tmp.iterdir()) == []


@pytest.mark.parametrize("dockerfile", kit.BASE_DOCKERFILES)
def test_base_copies_requirements_before_installing_and_no_app_code(dockerfile):
    steps = kit.instructions(dockerfile)
    first_pip = next(s["startline"] for s in steps if "pip install" in s["value"])
    requirement_copies = [
        s
        for s in steps
        if s["instruction"] == "COPY" and s["value"].strip().startswith("requirements/")
    ]
    assert requirement_copies
    assert all(s["startline"] < first_pip for s in requirement_copies)
    for sources, dest in kit.copies(dockerfile):
        for source in sources:
            # Code only into the throwaway prefetch folder, never into the app's WORKDIR.
            assert source.startswith("requirements/") or dest.startswith("/opt/prefetch/")
    assert "pip check" in _run_text(dockerfile)


@pytest.mark.parametrize(
    "requirements", ["torch.txt", "serving.txt", "frontend.txt", "gateway.txt"]
)
def test_image_requirements_are_pinned(requirements):
    for line in kit.requirement_lines(requirements):
        assert re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[0-9][A-Za-z0-9.+]*", line), line


def test_frontend_base_installs_the_chosen_lock():
    base = kit.parse(kit.FRONTEND_BASE)
    assert base.args["REQUIREMENTS"] == "frontend.txt"
    assert 'pip install -r "requirements/locks/${REQUIREMENTS}"' in _run_text(kit.FRONTEND_BASE)
    copied = {s for sources, _ in kit.copies(kit.FRONTEND_BASE) for s in sources}
    # Both choices; a lock is flat (no -r includes), so nothing else is needed.
    assert copied == {"requirements/locks/frontend.txt", "requirements/locks/gateway.txt"}


@pytest.mark.parametrize("dockerfile", kit.ALL_DOCKERFILES)
def test_dockerfiles_hold_no_secrets(dockerfile):
    secret_name = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|CREDENTIAL)", re.I)
    for step in kit.instructions(dockerfile):
        if step["instruction"] in ("ENV", "ARG"):
            assert not secret_name.search(step["value"]), step["content"]
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in (kit.REPO_ROOT / dockerfile).read_text()
