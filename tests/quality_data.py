"""Small slices of the shared crowdsourcing datasets for the quality tests (skipped when shared/ is absent)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import SHARED


def shared_slice(folder: str, n_tasks: int) -> tuple[pd.DataFrame, pd.Series]:
    """The answers and truth of the first ``n_tasks`` tasks (ids sorted as text) of a shared dataset."""
    base = SHARED / folder
    if not (base / "labels.csv").exists():
        pytest.skip(f"shared datasets not found at {SHARED} (CI puts a copy of shared/ beside the repo)")
    df = pd.read_csv(base / "labels.csv", dtype=str).rename(columns={"item": "task"})
    df["label"] = df["label"].astype(int)
    truth = pd.read_csv(base / "truth.csv", dtype=str).set_index("item")["label"].astype(int)
    tasks = sorted(df["task"].unique())[:n_tasks]
    df = df[df["task"].isin(tasks)].sort_values(["worker", "task"]).reset_index(drop=True)
    return df, truth[truth.index.isin(tasks)]
