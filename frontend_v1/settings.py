"""frontend_v1's configuration: SERVING_URL, the client's patience and the page's limits."""

from __future__ import annotations

from apiclient.settings import FrontendSettings


class FrontendV1Settings(FrontendSettings):
    pass
