"""Run apiclient, or a frontend page in AppTest, in a fresh process and print what happened.

google-auth reads GCE_METADATA_HOST when it is first imported, so a test that
points it at a fake metadata server runs the client here, in a new process
with that environment, instead of in the test process.

    python -m tests.apiclient.in_fresh_process calls N [CLIENTS]
    python -m tests.apiclient.in_fresh_process frontend frontend_v1
"""

from __future__ import annotations

import json
import sys

from apiclient import ApiClient, ApiClientError, ClientSettings


def calls(count: int, clients: int) -> list:
    settings = ClientSettings()
    made = [ApiClient.from_settings(settings) for _ in range(clients)]
    outcomes: list = []
    for index in range(count):
        try:
            outcomes.append(made[index % clients].health())
        except ApiClientError as error:
            status = getattr(error, "status", None)
            outcomes.append({"kind": error.kind, "status": status, "message": str(error)})
    return outcomes


def frontend(component: str) -> dict:
    from tests.support.frontend import app_test, texts

    at = app_test(component).run()
    return {
        "exception": [str(e.value) for e in at.exception],
        "errors": texts(at.error),
        "captions": texts(at.caption),
    }


if __name__ == "__main__":
    verb, *rest = sys.argv[1:]
    if verb == "calls":
        print(json.dumps(calls(int(rest[0]), int(rest[1]) if len(rest) > 1 else 1)))
    else:
        print(json.dumps(frontend(rest[0])))
