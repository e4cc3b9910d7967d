"""What a deploy script deploys: its one `gcloud run deploy` call and the service's name.

Shared by the deploy checks (Q3, Q6) and by the deliverables check, which
tells a backend's URL from a frontend's by the names the scripts deploy.
"""

from __future__ import annotations

import re

from autograder import assignment
from autograder.checks.common import gcloud_words, side_calls_note, working_script
from autograder.context import GradingContext
from autograder.feedback import CheckFailed
from autograder.script_runner import RecordedCall

# Cloud Run: lowercase letters, digits and dashes, starting with a letter, at most 49.
SERVICE_NAME = re.compile(r"[a-z](?:[a-z0-9-]{0,47}[a-z0-9])?")


def deploy_call(ctx: GradingContext, component: str) -> RecordedCall:
    logical = assignment.deploy_script(component)
    run = working_script(ctx, logical)
    deploys = [c for c in run.gcloud_calls if gcloud_words(c)[:2] == ["run", "deploy"]]
    if not deploys:
        called = [" ".join(c.command)[:120] for c in run.gcloud_calls]
        raise CheckFailed(
            what="the script never deploys to Cloud Run",
            expected="a `gcloud run deploy SERVICE --image=...` command",
            found=("gcloud calls: " + "; ".join(called) if called else "no gcloud call at all")
            + side_calls_note(run),
            fix="call gcloud run deploy (see the template)",
            where=logical,
        )
    if len(deploys) > 1:
        names = [(gcloud_words(c)[2:3] or ["?"])[0] for c in deploys]
        raise CheckFailed(
            what="the script deploys more than once",
            expected=f"one `gcloud run deploy` of {component}",
            found=f"{len(deploys)} deploys: {', '.join(names)}",
            fix="deploy one service per script",
            where=logical,
        )
    return deploys[0]


def raw_service_name(call: RecordedCall) -> str | None:
    words = gcloud_words(call)[2:]
    return call.flag("--service") or (words[0] if words else None)


def service_name(ctx: GradingContext, component: str) -> str:
    """The deployed service's name, once it is a valid Cloud Run name."""
    call = deploy_call(ctx, component)
    logical = assignment.deploy_script(component)
    name = raw_service_name(call)
    suggestion = component.replace("_", "-")
    if not name:
        raise CheckFailed(
            what="gcloud run deploy is not given a service name",
            expected=f"gcloud run deploy {suggestion} ...",
            found=" ".join(call.command)[:200],
            fix="put the service name right after `gcloud run deploy`",
            where=logical,
        )
    if not SERVICE_NAME.fullmatch(name):
        reason = (
            "Cloud Run rejects underscores in service names"
            if "_" in name
            else "service names take lowercase letters, digits and dashes, start with a "
            "letter, end without a dash, at most 49 characters"
        )
        raise CheckFailed(
            what=f"the service name is not valid: {reason}",
            expected=f"e.g. {suggestion}",
            found=name,
            fix=f"name the service {suggestion}",
            where=logical,
        )
    return name


def deployed_name(ctx: GradingContext, component: str) -> str | None:
    """The name the deploy script gives the service, if it deploys one (valid or not)."""
    try:
        return raw_service_name(deploy_call(ctx, component))
    except CheckFailed:
        return None
