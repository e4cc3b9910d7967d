"""Q3 and Q6 live part: the deployed services answer (only with --live).

The backend probe uploads a photo the grader ships (autograder/probe_image.jpg)
to /predict as a multipart upload, so the point depends on the student's
service alone, never on a third-party image host. With --probe-image-url the
backend is also asked to fetch that URL: an extra, reported in the item's note,
that can never cost a point (the host may be down or refuse the service).

Each probe has a connect and a read timeout and is retried once (a Cloud Run
service scaled to zero may need a cold start); urllib3's Retry does the
retrying so that the policy is one declaration rather than a loop.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from autograder.checks import check
from autograder.checks.deliverables import listed_urls
from autograder.context import GradingContext
from autograder.feedback import CheckFailed, Pending

CONNECT_TIMEOUT = 10.0


def _session() -> requests.Session:
    retry = Retry(
        total=1,
        connect=1,
        read=1,
        status=1,
        status_forcelist=(429, 502, 503, 504),
        allowed_methods=None,  # POST /predict is idempotent for us: retry it too
        backoff_factor=1.0,
        raise_on_status=False,
    )
    session = requests.Session()
    session.trust_env = False  # no proxies or netrc of the grader's environment
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "cloud-ml-deploy-autograder"
    return session


def _require_live(ctx: GradingContext, version: str, role: str) -> str:
    if not ctx.options.live:
        raise Pending(
            f"not probed: run `pytest autograder --live` once your {version} services are "
            "deployed (these points are awarded only by a live run)"
        )
    return listed_urls(ctx, version)[role].url.rstrip("/")


def _get(session, url: str, where: str, timeout: float, **kwargs) -> requests.Response:
    method = kwargs.pop("method", "GET")
    try:
        return session.request(method, url, timeout=(CONNECT_TIMEOUT, timeout), **kwargs)
    except requests.RequestException as exc:
        raise CheckFailed(
            what=f"{method} {url} got no answer",
            expected="an HTTP response (after one retry)",
            found=f"{type(exc).__name__}: {str(exc)[:200]}",
            fix="check that the service is deployed and public: open the URL in a browser",
            where=where,
        ) from None


def _json(response: requests.Response, what: str, where: str):
    try:
        return response.json()
    except ValueError:
        raise CheckFailed(
            what=f"{what} did not answer JSON",
            expected="a JSON body",
            found=f"{response.headers.get('content-type', '?')}: {response.text[:120]!r}",
            fix="check that this URL is the backend, not the frontend",
            where=where,
        ) from None


def _status(response: requests.Response, what: str, where: str, expected: str = "200") -> None:
    if response.status_code != 200:
        raise CheckFailed(
            what=f"{what} answered HTTP {response.status_code}",
            expected=f"HTTP {expected}",
            found=f"HTTP {response.status_code}: {response.text[:160]!r}",
            fix="403: deploy with --allow-unauthenticated; 404: check the URL; 5xx: read the "
            "service's logs in the Cloud Run console",
            where=where,
        )


@check("live_backend")
def live_backend(ctx: GradingContext, version: str) -> str | None:
    base = _require_live(ctx, version, "back_end")
    where = f"deliverables.yaml services.{version}.back_end"
    timeout = ctx.options.probe_timeout
    with _session() as session:
        health = _get(session, f"{base}/health", where, timeout)
        if health.status_code == 404:
            # The original kit's backends had no /health: their root answers instead.
            health = _get(session, f"{base}/", where, timeout)
        _status(health, f"GET {base}/health", where)
        if version == "v2":
            models = _get(session, f"{base}/models", where, timeout)
            _status(models, f"GET {base}/models", where)
            body = _json(models, "/models", where)
            listed = body.get("models") if isinstance(body, dict) else body
            if not listed:
                raise CheckFailed(
                    what="/models lists no model",
                    expected='{"models": [{"name": ..., "available": true}, ...]}',
                    found=str(body)[:160],
                    fix="deploy backend v2's image",
                    where=where,
                )
        upload = {"image": ("probe.jpg", ctx.options.probe_image.read_bytes(), "image/jpeg")}
        predict = _get(session, f"{base}/predict", where, timeout, method="POST", files=upload)
        _status(predict, f"POST {base}/predict (a JPEG uploaded in the field `image`)", where)
        _prediction(predict, where)
        if ctx.options.probe_image_url:
            return _url_probe(session, base, ctx.options.probe_image_url, timeout)
    return None


def _prediction(response: requests.Response, where: str) -> None:
    body = _json(response, "/predict", where)
    if not isinstance(body, dict) or not (body.get("predictions") or body.get("category")):
        raise CheckFailed(
            what="/predict answered without a prediction",
            expected='{"category": ..., "predictions": [...]}',
            found=str(body)[:160],
            fix="deploy the backend image of this version",
            where=where,
        )


def _url_probe(session, base: str, image_url: str, timeout: float) -> str:
    """The extra URL probe's outcome, as a note: it never costs a point."""
    try:
        response = session.post(
            f"{base}/predict", json={"url": image_url}, timeout=(CONNECT_TIMEOUT, timeout)
        )
        _status(response, "POST /predict with an image URL", "")
        _prediction(response, "")
    except (requests.RequestException, CheckFailed) as exc:
        reason = exc.what if isinstance(exc, CheckFailed) else type(exc).__name__
        return f"extra, not graded: fetching {image_url} by URL failed ({reason})"
    return f"extra, not graded: /predict also classified {image_url} by URL"


@check("live_frontend")
def live_frontend(ctx: GradingContext, version: str) -> None:
    base = _require_live(ctx, version, "front_end")
    where = f"deliverables.yaml services.{version}.front_end"
    timeout = ctx.options.probe_timeout
    with _session() as session:
        health = _get(session, f"{base}/_stcore/health", where, timeout)
        if health.status_code == 404:
            health = _get(session, f"{base}/healthz", where, timeout)  # Streamlit < 1.18
        _status(health, f"GET {base}/_stcore/health", where)
        page = _get(session, f"{base}/", where, timeout)
        _status(page, f"GET {base}/", where)
        if "streamlit" not in page.text.lower():
            raise CheckFailed(
                what="the front end does not answer as a Streamlit app",
                expected="Streamlit's page",
                found=page.text[:120],
                fix="check that front_end is the frontend's URL and that it runs frontend "
                f"{version}'s image",
                where=where,
            )
