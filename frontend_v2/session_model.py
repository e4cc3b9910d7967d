"""Keep the user's model choice in the backend's server-side session.

The backend (v2 or the gateway) remembers the model per session cookie; the
browser session's ApiClient holds that cookie. Here we remember what the
backend holds, send `PUT /model/<name>` only when the choice changes, and fall
back to naming the model in each request when the backend keeps no sessions
(a v1 backend answers 404 to /model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from apiclient import ApiClient, BackendError

SERVER_MODEL_KEY = "v2_server_model"
SESSIONS_KEY = "v2_backend_keeps_sessions"


@dataclass(frozen=True)
class ModelEntry:
    """One /models entry, as the picker needs it."""

    name: str
    available: bool
    default: bool
    reason: str = ""
    description: str = ""

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> ModelEntry:
        return cls(
            name=str(entry.get("name", "?")),
            available=bool(entry.get("available", True)),
            default=bool(entry.get("default", False)),
            reason=str(entry.get("reason") or "no reason given"),
            description=str(entry.get("description") or ""),
        )

    @property
    def label(self) -> str:
        # Short, so the picker never cuts a name off. Streamlit cannot disable one
        # option of a selectbox: an unavailable model is marked here, listed under
        # the picker, and explained (and refused) once picked.
        if not self.available:
            return f"{self.name} (unavailable)"
        return f"{self.name} (default)" if self.default else self.name


def default_model(models: list[ModelEntry]) -> str | None:
    for entry in models:
        if entry.default:
            return entry.name
    available = [m.name for m in models if m.available]
    return available[0] if available else (models[0].name if models else None)


def backend_keeps_sessions() -> bool:
    return st.session_state.get(SESSIONS_KEY, True)


def server_model(client: ApiClient, models: list[ModelEntry]) -> str | None:
    """The model the backend's session holds for us, asked once per browser session."""
    if SERVER_MODEL_KEY not in st.session_state:
        try:
            st.session_state[SERVER_MODEL_KEY] = client.get_model().get("model")
            st.session_state[SESSIONS_KEY] = True
        except BackendError as error:
            if error.status not in (404, 405) or error.code == "unknown_model":
                raise
            st.session_state[SERVER_MODEL_KEY] = default_model(models)
            st.session_state[SESSIONS_KEY] = False
    return st.session_state[SERVER_MODEL_KEY]


def send_choice(client: ApiClient, chosen: str) -> bool:
    """PUT /model/<chosen> if it differs from what the backend holds; True if it was sent."""
    if not backend_keeps_sessions() or st.session_state.get(SERVER_MODEL_KEY) == chosen:
        return False
    answer = client.set_model(chosen)
    st.session_state[SERVER_MODEL_KEY] = answer.get("model", chosen)
    return True


def forget_server_model() -> None:
    """Ask the backend again next run (its session was lost, e.g. a new instance)."""
    st.session_state.pop(SERVER_MODEL_KEY, None)


def why_another_model(selected_by: str | None) -> str:
    """The end of "the backend answered with <model>", from the answer's selected_by."""
    if selected_by == "service_default":
        return ": it had no choice in your session, so its default model answered."
    if selected_by == "session_store_unavailable":
        return ": it could not read your session just now, so its default model answered."
    return "."  # an older backend does not say why
