"""`make images` builds what the reference Cloud Build configs build, the way they build it."""

from __future__ import annotations

import pytest

from tests.deployment import kit
from tools.images import plan

CONFIGS = sorted((kit.REPO_ROOT / "solution").rglob("cloudbuild_*.yaml"))


def _image_name(reference: str) -> str:
    return reference.rsplit("/", 1)[-1].split(":")[0]


def built_by(config) -> list[tuple[str, str, dict[str, str]]]:
    """(image name, Dockerfile, build arguments) of every docker build step of a config."""
    found = []
    for step in kit.parse_yaml(str(config.relative_to(kit.REPO_ROOT)))["steps"]:
        args = step.get("args") or []
        if step.get("entrypoint") or not args or args[0] != "build":
            continue
        build_args = dict(a.split("=", 1) for a in kit.docker_option(args, "--build-arg"))
        build_args.pop("BUILDKIT_INLINE_CACHE", None)  # docker's own, for the cache
        if "BASE_IMAGE" in build_args:
            build_args["BASE_IMAGE"] = _image_name(build_args["BASE_IMAGE"])
        (dockerfile,) = kit.docker_option(args, "--file")
        found.append((_image_name(kit.docker_option(args, "--tag")[0]), dockerfile, build_args))
    return found


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_every_image_a_config_builds_is_in_the_plan_built_the_same_way(config):
    for name, dockerfile, build_args in built_by(config):
        spec = plan.BY_NAME[name]
        assert spec.dockerfile == dockerfile
        expected = dict(spec.build_args)
        if spec.base:
            expected["BASE_IMAGE"] = spec.base
        assert build_args == expected


def test_the_plan_builds_nothing_the_configs_do_not():
    built = {name for config in CONFIGS for name, _, _ in built_by(config)}
    assert built == set(plan.BY_NAME)


def test_bases_come_before_the_images_built_on_them():
    order = [spec.name for spec in plan.PLAN]
    for spec in plan.PLAN:
        if spec.base:
            assert order.index(spec.base) < order.index(spec.name)
    assert [s.name for s in plan.selected(["frontend-v1"])] == ["frontend-base", "frontend-v1"]
    with pytest.raises(ValueError, match="unknown image"):
        plan.selected(["backend-v3"])
