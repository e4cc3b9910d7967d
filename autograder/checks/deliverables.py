"""Q3 and Q6: deliverables.yaml lists each version's Cloud Run URLs."""

from __future__ import annotations

from autograder.checks import check
from autograder.context import GradingContext


@check("deliverables")
def deliverables_listed(ctx: GradingContext, version: str) -> None:
    ctx.version_urls(version)
