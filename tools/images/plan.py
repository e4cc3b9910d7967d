"""Every image the assignment ships, built the way the reference Cloud Build configs build it.

Same Dockerfiles, the repository root as the context, the same build
arguments; an app image gets BASE_IMAGE naming the base built just before it.
v3's model services are not images of their own: each runs backend-v1 with
MODEL_NAME set, as v3's deploy script runs it. A test checks this plan
against the reference configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOCAL_PREFIX = "localhost/ml-deploy/"


@dataclass(frozen=True)
class ImageSpec:
    name: str  # as the reference configs name it in Artifact Registry
    dockerfile: str
    build_args: dict[str, str] = field(default_factory=dict)
    base: str | None = None  # the image of this plan its BASE_IMAGE names
    component: str | None = None  # the folder whose code an app image adds

    @property
    def reference(self) -> str:
        return f"{LOCAL_PREFIX}{self.name}:latest"

    @property
    def is_base(self) -> bool:
        return self.base is None


BACKEND_BASE = "deployment/Dockerfile.backend-base"
FRONTEND_BASE = "deployment/Dockerfile.frontend-base"

PLAN: tuple[ImageSpec, ...] = (
    ImageSpec("backend-base", BACKEND_BASE),
    ImageSpec("frontend-base", FRONTEND_BASE),
    ImageSpec("gateway-base", FRONTEND_BASE, {"REQUIREMENTS": "gateway.txt"}),
    ImageSpec("backend-v1", "backend_v1/Dockerfile", base="backend-base", component="backend_v1"),
    ImageSpec("backend-v2", "backend_v2/Dockerfile", base="backend-base", component="backend_v2"),
    ImageSpec(
        "frontend-v1", "frontend_v1/Dockerfile", base="frontend-base", component="frontend_v1"
    ),
    ImageSpec(
        "frontend-v2", "frontend_v2/Dockerfile", base="frontend-base", component="frontend_v2"
    ),
    ImageSpec("v3-gateway", "v3_gateway/Dockerfile", base="gateway-base", component="v3_gateway"),
)
BY_NAME = {spec.name: spec for spec in PLAN}


def build_args(spec: ImageSpec) -> dict[str, str]:
    """The build arguments the reference configs pass (BASE_IMAGE pointing at our base)."""
    args = dict(spec.build_args)
    if spec.base is not None:
        args["BASE_IMAGE"] = BY_NAME[spec.base].reference
    return args


def selected(names: list[str] | None) -> list[ImageSpec]:
    """The named images and the bases they need, in build order (bases first)."""
    if not names:
        return list(PLAN)
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown image(s) {unknown}; known: {', '.join(BY_NAME)}")
    wanted = set(names) | {BY_NAME[n].base for n in names if BY_NAME[n].base}
    return [spec for spec in PLAN if spec.name in wanted]
