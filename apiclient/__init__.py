"""Torch-free client of the public HTTP API (no Flask, no Streamlit at import time).

`apiclient.ui` holds Streamlit helpers the two frontends share; it imports
Streamlit itself, so the core stays importable where Streamlit is absent.
"""

from apiclient.client import ApiClient
from apiclient.errors import (
    ApiClientError,
    BackendAuthFailed,
    BackendError,
    BackendTimeout,
    BackendUnreachable,
    InvalidResponse,
    ServingUrlInvalid,
    ServingUrlMissing,
)
from apiclient.settings import ClientSettings

__all__ = [
    "ApiClient",
    "ApiClientError",
    "BackendAuthFailed",
    "BackendError",
    "BackendTimeout",
    "BackendUnreachable",
    "ClientSettings",
    "InvalidResponse",
    "ServingUrlInvalid",
    "ServingUrlMissing",
]
