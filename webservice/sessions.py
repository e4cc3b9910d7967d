"""Server-side sessions with flask-session, shared by backend_v2 and the v3 gateway.

The browser's cookie carries only a signed session id; the caller's choices
live in the store: `cachelib` keeps them in files in SESSION_DIR, `redis` in
the Redis at SESSION_REDIS_URL.

A store that is down or frozen never fails a request: each call to it is
bounded (SESSION_STORE_TIMEOUT), and a request whose session cannot be read goes
on without it (GuardedSessions below). The /model routes, which exist to read
and write the session, answer 503 session_store_unavailable instead
(webservice/model_choice.py).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import threading
import time
import warnings
from typing import Any, Literal

from flask import Flask, Request, Response, current_app, session
from flask.sessions import SessionInterface, SessionMixin
from flask_session import Session
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from webservice import errors

log = logging.getLogger(__name__)
# Set on the stand-in session of a request whose session could not be read.
STORE_UNAVAILABLE = "store_unavailable"


class SessionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    session_store: Literal["cachelib", "redis"] = "cachelib"
    # A temporary folder, writable by the images' unprivileged user.
    session_dir: str = Field(
        os.path.join(tempfile.gettempdir(), "flask-sessions"), description="cachelib store folder"
    )
    session_redis_url: str | None = Field(None, description="redis://host:6379/0")
    # Without SECRET_KEY, each process makes up its own when it starts.
    secret_key: str = Field(default_factory=lambda: secrets.token_hex(32))
    session_lifetime_seconds: int = Field(7 * 24 * 3600, gt=0)
    session_cookie_secure: bool = False  # True behind https (Cloud Run)
    # One call to the store (connect, or each answer) waits this long at most. Redis
    # in the same region answers in about a millisecond; a frozen one never does.
    session_store_timeout: float = Field(0.5, gt=0, description="seconds per store call")
    # After a failed call, this process leaves the store alone for this long (requests
    # go on without sessions at once, and 503s say Retry-After this), then tries again.
    session_store_retry_seconds: int = Field(1, ge=1)


def init_sessions(app: Flask, settings: SessionSettings) -> None:
    """Keep each caller's session on the server, in the store `settings` names."""
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_PERMANENT=True,
        SESSION_USE_SIGNER=True,
        SESSION_KEY_PREFIX="session:",
        PERMANENT_SESSION_LIFETIME=settings.session_lifetime_seconds,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        # Write a session back only when it changed. Flask's default rewrites every
        # permanent session on every request, so a slow /predict that read the old
        # choice would overwrite a PUT /model that finished while it ran.
        SESSION_REFRESH_EACH_REQUEST=False,
        **session_store(settings),
    )
    with warnings.catch_warnings():
        # flask-session 0.8 deprecates signing (its ids are already 256-bit random);
        # we keep the signature so a forged or tampered cookie is refused outright.
        warnings.filterwarnings("ignore", "The 'use_signer' option", DeprecationWarning)
        Session(app)
    app.session_interface = GuardedSessions(
        app.session_interface, store_errors(settings), settings.session_store_retry_seconds
    )


def session_store(settings: SessionSettings) -> dict[str, Any]:
    """flask-session's configuration of the store SESSION_STORE names."""
    if settings.session_store == "redis":
        if not settings.session_redis_url:
            raise SystemExit(
                "cannot start: SESSION_STORE=redis needs SESSION_REDIS_URL (redis://host:6379/0)."
            )
        from redis import ConnectionError, Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = Redis.from_url(
            settings.session_redis_url,
            socket_connect_timeout=settings.session_store_timeout,
            socket_timeout=settings.session_store_timeout,
            # One immediate retry on a broken connection (a pooled one that a restarted
            # Redis closed); none after a timeout, so a frozen store costs one timeout.
            retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
        )
        return {"SESSION_TYPE": "redis", "SESSION_REDIS": client}
    from cachelib.file import FileSystemCache

    store = FileSystemCache(
        settings.session_dir, threshold=10_000, default_timeout=settings.session_lifetime_seconds
    )
    return {"SESSION_TYPE": "cachelib", "SESSION_CACHELIB": store}


def store_errors(settings: SessionSettings) -> tuple[type[Exception], ...]:
    """What the store's client raises when the store is unreachable or failing."""
    if settings.session_store == "redis":
        from redis import RedisError

        return (RedisError, OSError)
    return (OSError,)


class StoreOutage:
    """When this process last failed to reach the store, so that it skips the store
    for a moment instead of making every request wait for a timeout."""

    def __init__(self, retry_seconds: int) -> None:
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._failed_at: float | None = None

    def skipping(self) -> bool:
        with self._lock:
            failed_at = self._failed_at
        return failed_at is not None and time.monotonic() - failed_at < self.retry_seconds

    def failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._failed_at is None
            self._failed_at = time.monotonic()
        if first:
            log.warning(
                "session store unreachable (%s: %s): requests go on without their sessions "
                "and /model answers 503 until it answers again (tried every %d s)",
                type(exc).__name__,
                exc,
                self.retry_seconds,
            )

    def reached(self) -> None:
        with self._lock:
            recovered = self._failed_at is not None
            self._failed_at = None
        if recovered:
            log.info("session store reachable again")


class GuardedSessions(SessionInterface):
    """flask-session's interface, with the store's failures turned into "no session".

    Opening: a request that carries a session cookie but whose session cannot be
    read gets an empty stand-in session marked STORE_UNAVAILABLE (see
    session_store_unavailable), never an exception. Saving: a stand-in is never
    written (it would replace the caller's real session once the store is back),
    and a write that fails turns the response into 503 session_store_unavailable.
    """

    def __init__(
        self, inner: Any, store_errors: tuple[type[Exception], ...], retry_seconds: int
    ) -> None:
        self.inner = inner
        self.store_errors = store_errors
        self.outage = StoreOutage(retry_seconds)

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if not request.cookies.get(app.config["SESSION_COOKIE_NAME"]):
            opened: SessionMixin | None = self.inner.open_session(app, request)
            return opened  # a new caller: nothing to read from the store
        if self.outage.skipping():
            return self._stand_in()
        try:
            opened = self.inner.open_session(app, request)
        except self.store_errors as exc:
            self.outage.failed(exc)
            return self._stand_in()
        self.outage.reached()
        return opened

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if getattr(session, STORE_UNAVAILABLE, False):
            return
        try:
            self.inner.save_session(app, session, response)
        except self.store_errors as exc:
            self.outage.failed(exc)
            _replace_with(response, self.unavailable_error())
        else:
            if session.modified:
                self.outage.reached()

    def _stand_in(self) -> SessionMixin:
        stand_in: SessionMixin = self.inner.session_class(sid="", permanent=True)
        setattr(stand_in, STORE_UNAVAILABLE, True)
        return stand_in

    def unavailable_error(self) -> errors.SessionStoreUnavailable:
        seconds = self.outage.retry_seconds
        return errors.SessionStoreUnavailable(
            "The session store, which keeps your chosen model, cannot be reached right now; "
            f"try again in {seconds} s. Requests that name their model still work.",
            retry_after_seconds=seconds,
        )


def check_session_store(*, writing: bool) -> None:
    """Raise 503 session_store_unavailable if this request's session could not be read,
    or, before a write, if the store failed a moment ago (the write would fail too)."""
    guard = current_app.session_interface
    if not isinstance(guard, GuardedSessions):
        return
    if session_store_unavailable() or (writing and guard.outage.skipping()):
        raise guard.unavailable_error()


def session_store_unavailable() -> bool:
    """Could this request's session not be read (the store was unreachable)?"""
    return bool(getattr(session, STORE_UNAVAILABLE, False))


def _replace_with(response: Response, error: errors.ApiError) -> None:
    """Turn a response that is already made into `error`'s JSON answer."""
    response.status_code = error.status
    response.set_data(json.dumps(error.to_json()))
    response.mimetype = "application/json"
    response.headers["Retry-After"] = str(error.details["retry_after_seconds"])
