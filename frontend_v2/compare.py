"""The compare-models view: one image through every available model, side by side."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from apiclient import ApiClient, ui


@dataclass(frozen=True)
class ModelRun:
    model: str
    outcome: ui.Outcome


def run_all(client: ApiClient, choice: ui.ImageChoice, models: list[str], top_k: int):
    """Each model in turn, named in the request so the session's own choice is untouched."""
    return [
        ModelRun(
            name,
            ui.timed_call(
                choice.key,
                lambda name=name: choice.predict(client, model=name, top_k=top_k),
            ),
        )
        for name in models
    ]


def summary_frame(runs: list[ModelRun]) -> pd.DataFrame:
    rows = []
    for run in runs:
        result, error = run.outcome.result, run.outcome.error
        top = (result or {}).get("predictions") or [{}]
        rows.append(
            {
                "model": run.model,
                "top-1": top[0].get("label"),
                "probability": top[0].get("probability"),
                "backend ms": ((result or {}).get("timing_ms") or {}).get("total_ms"),
                "round trip ms": round(run.outcome.round_trip_ms, 1) if result else None,
                "error": "" if error is None else error.message,
            }
        )
    return pd.DataFrame(rows)


def predictions_frame(runs: list[ModelRun]) -> pd.DataFrame:
    """Every model's top-k in long form: model, rank, label, probability."""
    rows = [
        {
            "model": run.model,
            "rank": rank,
            "label": p["label"],
            "probability": float(p["probability"]),
        }
        for run in runs
        if run.outcome.result
        for rank, p in enumerate(run.outcome.result.get("predictions", []), start=1)
    ]
    return pd.DataFrame(rows, columns=["model", "rank", "label", "probability"])


def render(runs: list[ModelRun]) -> None:
    summary = summary_frame(runs)
    st.dataframe(summary, hide_index=True)
    for run in runs:
        if run.outcome.error is not None:
            st.error(f"{run.model}: {run.outcome.error.message}")
    succeeded = summary[summary["error"] == ""]
    if succeeded.empty:
        return
    predictions = predictions_frame(runs)
    st.markdown("**Top predictions per model**")
    st.bar_chart(
        predictions, x="label", y="probability", color="model", horizontal=True, stack=False
    )
    st.dataframe(predictions, hide_index=True)
    st.markdown("**Latency per model (ms)**")
    st.bar_chart(succeeded, x="model", y=["backend ms", "round trip ms"], stack=False)
