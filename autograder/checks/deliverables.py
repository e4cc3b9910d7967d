"""Q3 and Q6: deliverables.yaml lists each version's Cloud Run URLs, each in its place.

Beyond each URL's own shape (autograder/deliverables.py), a URL must belong to
the service its key names: a backend's URL under back_end, this version's and
not the other's. Whose service a URL is comes from its service name, compared
with the names the deploy scripts deploy (or, failing that, the words
"front"/"back" in it).
"""

from __future__ import annotations

from autograder import assignment, deliverables
from autograder.checks import check
from autograder.checks.services import deployed_name
from autograder.context import GradingContext
from autograder.deliverables import ROLES, ServiceUrl
from autograder.feedback import CheckFailed

FILE = deliverables.FILE


def listed_urls(ctx: GradingContext, version: str) -> dict[str, ServiceUrl]:
    """The version's back_end/front_end URLs, once each is in its right place."""

    def compute() -> dict[str, ServiceUrl]:
        urls = ctx.version_urls(version)
        _check_roles(ctx, version, urls)
        _check_apart_from_other_version(ctx, version, urls)
        return urls

    return ctx.memo(("listed-urls", version), compute)


@check("deliverables")
def deliverables_listed(ctx: GradingContext, version: str) -> None:
    listed_urls(ctx, version)


def _owner(ctx: GradingContext, service: str | None) -> tuple[str | None, str | None]:
    """(role, component) the service name belongs to, as far as can be told."""
    if not service:
        return None, None
    for component in assignment.COMPONENTS:
        if service == deployed_name(ctx, component):
            return component.split("_")[0], component
    front, back = "front" in service, "back" in service
    if front != back:
        return ("frontend" if front else "backend"), None
    return None, None


def _check_roles(ctx: GradingContext, version: str, urls: dict[str, ServiceUrl]) -> None:
    owners = {key: _owner(ctx, url.service_name) for key, url in urls.items()}
    misplaced = {key: owners[key] for key in urls if owners[key][0] not in (None, ROLES[key])}
    if not misplaced:
        return
    where = f"{FILE} services.{version}"

    def described(key: str) -> str:
        role, component = owners[key]
        by = f", deployed by {assignment.deploy_script(component)}" if component else ""
        return f"{key}: {urls[key].url} (the service {urls[key].service_name}: a {role}{by})"

    if len(misplaced) == 2:
        raise CheckFailed(
            what="the back_end and front_end URLs are swapped",
            expected="back_end: the backend's URL, front_end: the frontend's URL",
            found="; ".join(described(key) for key in urls),
            fix="swap the two URLs in deliverables.yaml",
            where=where,
        )
    key = next(iter(misplaced))
    raise CheckFailed(
        what=f"{key} is not the URL of a {ROLES[key]}",
        expected=f"the URL of your {ROLES[key]} {version} service",
        found=described(key),
        fix=f"list the {ROLES[key]}'s URL (from `gcloud run services describe`) under {key}",
        where=f"{where}.{key}",
    )


def _check_apart_from_other_version(
    ctx: GradingContext, version: str, urls: dict[str, ServiceUrl]
) -> None:
    """v2's services are not v1's: each version deploys its own pair."""
    for other in assignment.VERSIONS:
        if other == version:
            continue
        try:
            theirs = ctx.version_urls(other)
        except CheckFailed:
            continue
        for key, url in urls.items():
            same_url = url.url.rstrip("/") == theirs[key].url.rstrip("/")
            owner = _owner(ctx, url.service_name)[1]
            wrong_component = owner is not None and owner.split("_")[1] != version
            # The later version is the one that repeats the earlier one's URL.
            if (same_url and version > other) or wrong_component:
                component = assignment.component_of(ROLES[key], version)
                raise CheckFailed(
                    what=f"services.{version}.{key} is the URL of the {other} {ROLES[key]}",
                    expected=f"the URL of the {version} {ROLES[key]}, which "
                    f"{assignment.deploy_script(component)} deploys",
                    found=f"{url.url}, also listed as services.{other}.{key}"
                    if same_url
                    else f"{url.url} (the service {url.service_name})",
                    fix=f"copy the URL of the {version} service: "
                    f"`gcloud run services describe {component.replace('_', '-')} "
                    f"--region {assignment.REGION} --format 'value(status.url)'`",
                    where=f"{FILE} services.{version}.{key}",
                )
