"""Server-side sessions with flask-session, shared by backend_v2 and the v3 gateway.

The browser's cookie carries only a signed session id; the caller's choices
live in the store: `cachelib` keeps them in files in SESSION_DIR, `redis` in
the Redis at SESSION_REDIS_URL.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import warnings
from typing import Any, Literal

from flask import Flask
from flask_session import Session
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


def session_store(settings: SessionSettings) -> dict[str, Any]:
    """flask-session's configuration of the store SESSION_STORE names."""
    if settings.session_store == "redis":
        if not settings.session_redis_url:
            raise SystemExit(
                "cannot start: SESSION_STORE=redis needs SESSION_REDIS_URL (redis://host:6379/0)."
            )
        from redis import Redis

        return {
            "SESSION_TYPE": "redis",
            "SESSION_REDIS": Redis.from_url(settings.session_redis_url),
        }
    from cachelib.file import FileSystemCache

    store = FileSystemCache(
        settings.session_dir, threshold=10_000, default_timeout=settings.session_lifetime_seconds
    )
    return {"SESSION_TYPE": "cachelib", "SESSION_CACHELIB": store}
