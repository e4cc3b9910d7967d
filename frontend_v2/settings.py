"""frontend_v2's configuration: SERVING_URL and the client's patience, from the environment."""

from __future__ import annotations

from pydantic import Field

from apiclient.settings import ClientSettings


class FrontendV2Settings(ClientSettings):
    default_top_k: int = Field(5, ge=1, le=20, description="predictions shown by default")
    # Short, so a model whose weights appear shows up soon, yet page reruns stay cheap.
    models_ttl_seconds: float = Field(30, gt=0, description="how long /models stays cached")
