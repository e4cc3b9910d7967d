"""deliverables.yaml: the students' deployed service URLs, checked for shape.

Accepts both URL forms Cloud Run hands out: the hashed one,
https://<name>-<hash>-<region code>.a.run.app, and the deterministic one,
https://<name>-<project number>.<region>.run.app. With `allow_local_urls`
(tests, local rehearsals) http loopback URLs count too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from autograder import assignment
from autograder.feedback import CheckFailed
from autograder.safe_yaml import load_yaml_text

FILE = "deliverables.yaml"
ROLES = {"back_end": "backend", "front_end": "frontend"}
_HASHED = re.compile(
    r"(?P<name>[a-z0-9-]+)-(?P<hash>[a-z0-9]{10})-(?P<code>[a-z]{2,4})\.a\.run\.app"
)
_DETERMINISTIC = re.compile(
    r"(?P<name>[a-z0-9-]+)-(?P<number>[0-9]{6,})\.(?P<region>[a-z0-9-]+)\.run\.app"
)
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass
class ServiceUrl:
    url: str
    service_name: str | None  # the Cloud Run service name the URL belongs to


def load(text: str) -> dict:
    data = load_yaml_text(text, FILE)
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise CheckFailed(
            what="the file does not list your services",
            expected="services:\n    v1:\n      back_end: https://...\n      front_end: https://...",
            found="no `services:` mapping"
            if not isinstance(data, dict)
            else f"keys {sorted(data)}",
            fix="keep the layout of the handout's deliverables.yaml and fill in the URLs",
            where=FILE,
        )
    return data["services"]


def version_urls(services: dict, version: str, allow_local: bool) -> dict[str, ServiceUrl]:
    """The checked back_end/front_end URLs of one version, or CheckFailed."""
    entry = services.get(version)
    if not isinstance(entry, dict):
        raise CheckFailed(
            what=f"no `{version}` entry under `services`",
            expected=f"services.{version}.back_end and services.{version}.front_end",
            found=f"services has {sorted(map(str, services)) or 'no entries'}",
            fix=f"add the `{version}:` block with your two Cloud Run URLs",
            where=FILE,
        )
    urls = {}
    for key in ROLES:
        value = entry.get(key)
        where = f"{FILE} services.{version}.{key}"
        if value is None or not str(value).strip():
            raise CheckFailed(
                what="the URL is missing",
                expected=f"the URL of your deployed {ROLES[key]} {version}",
                found="nothing",
                fix="copy the service URL that `gcloud run deploy` printed",
                where=where,
            )
        urls[key] = check_url(str(value).strip(), where, allow_local)
    if urls["back_end"].url.rstrip("/") == urls["front_end"].url.rstrip("/"):
        raise CheckFailed(
            what="the back end and the front end have the same URL",
            expected="two services, each with its own URL",
            found=urls["back_end"].url,
            fix="deploy the frontend as its own service and list its URL as front_end",
            where=f"{FILE} services.{version}",
        )
    return urls


def check_url(url: str, where: str, allow_local: bool) -> ServiceUrl:
    placeholders = assignment.find_placeholders(url)
    if placeholders:
        raise CheckFailed(
            what="the URL is still the template's placeholder",
            expected="your service's real URL",
            found=url,
            fix="replace it with the URL `gcloud run deploy` printed",
            where=where,
        )
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if allow_local and parts.scheme in ("http", "https") and host in _LOOPBACK_HOSTS:
        return ServiceUrl(url, None)
    if parts.scheme != "https":
        raise CheckFailed(
            what="the URL is not an https URL",
            expected="https://<service>-<hash>-nn.a.run.app (Cloud Run serves https only)",
            found=url,
            fix="copy the https URL that `gcloud run deploy` printed",
            where=where,
        )
    if parts.path not in ("", "/") or parts.query or parts.port:
        raise CheckFailed(
            what="the URL has more than the service's address",
            expected="just the service URL, without a path, port or query",
            found=url,
            fix=f"use https://{host}",
            where=where,
        )
    hashed = _HASHED.fullmatch(host)
    if hashed:
        if hashed["code"] != assignment.REGION_CODE:
            raise CheckFailed(
                what="the service runs in another region",
                expected=f"a URL ending in -{assignment.REGION_CODE}.a.run.app "
                f"({assignment.REGION})",
                found=url,
                fix=f"deploy with --region {assignment.REGION} and list the new URL",
                where=where,
            )
        return ServiceUrl(url, hashed["name"])
    deterministic = _DETERMINISTIC.fullmatch(host)
    if deterministic:
        if deterministic["region"] != assignment.REGION:
            raise CheckFailed(
                what="the service runs in another region",
                expected=f"a URL ending in .{assignment.REGION}.run.app",
                found=url,
                fix=f"deploy with --region {assignment.REGION} and list the new URL",
                where=where,
            )
        return ServiceUrl(url, deterministic["name"])
    raise CheckFailed(
        what="the URL is not a Cloud Run service URL",
        expected="https://<service>-<hash>-nn.a.run.app or "
        f"https://<service>-<project number>.{assignment.REGION}.run.app",
        found=url,
        fix="copy the URL from `gcloud run services describe <service> "
        "--region northamerica-northeast1 --format 'value(status.url)'`",
        where=where,
    )
