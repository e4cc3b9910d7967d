"""The caller's own default model, GET/PUT/DELETE /model, shared by backend_v2 and the gateway.

The choice lives in the caller's server-side session under CHOICE_KEY. Each
service says how a choice is checked and stored (`choose`); the routes, their
answers and what GET and DELETE do are the same everywhere.

`selected_by` says why a request uses its model, in the same words everywhere:
"request" (the request named it), "session" (the caller's choice), or
"service_default" (no choice: none was made, or the session holding it is gone).
A prediction's answer carries it too, with one more value:
"session_store_unavailable" (the store could not be read, so the default answered).
While the store cannot be reached, the /model routes answer 503
session_store_unavailable with Retry-After (webservice/sessions.py).
"""

from __future__ import annotations

from collections.abc import Callable, Container

from flask import Blueprint, session

from webservice.sessions import check_session_store, session_store_unavailable

CHOICE_KEY = "model"


def session_choice(offered: Container[str] | None = None) -> str | None:
    """The model this caller chose with PUT /model/<name>, if any (and if still `offered`)."""
    choice = session.get(CHOICE_KEY)
    if not isinstance(choice, str) or (offered is not None and choice not in offered):
        return None
    return choice


def selected_by(named: str | None, offered: Container[str] | None = None) -> str:
    """Why a request that names `named` (or None) uses the model it does."""
    if named:
        return "request"
    if session_choice(offered):
        return "session"
    return "session_store_unavailable" if session_store_unavailable() else "service_default"


def model_choice_blueprint(
    *,
    default: str,
    choose: Callable[[str], None],
    offered: Container[str] | None = None,
) -> Blueprint:
    """The /model routes. `choose(name)` stores the caller's choice in their session, or
    raises an ApiError (404 unknown, 503 unavailable) and leaves the session as it was."""
    blueprint = Blueprint("model_choice", __name__)

    def answer(name: str, selected_by: str) -> dict[str, str]:
        return {"model": name, "selected_by": selected_by, "default": default}

    @blueprint.get("/model")
    def current_model() -> dict[str, str]:
        check_session_store(writing=False)
        choice = session_choice(offered)
        if choice:
            return answer(choice, "session")
        return answer(default, "service_default")

    @blueprint.put("/model/<name>")
    def choose_model(name: str) -> dict[str, str]:
        check_session_store(writing=True)
        choose(name)
        return answer(name, "session")

    @blueprint.delete("/model")
    def forget_model() -> dict[str, str]:
        check_session_store(writing=True)
        session.pop(CHOICE_KEY, None)
        return answer(default, "service_default")

    return blueprint
