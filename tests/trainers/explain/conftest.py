"""A small table with a known answer, trained and exported once: the class depends on `a` and `colour` only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from archsearch.spaces import NetSpec
from archsearch.trainers import Member, TrainSettings, export_ensemble, export_model, train_mlp
from archsearch.trainers.data import DataSpec, PreparedData, load_data

NET = NetSpec((32,), (0.0,), "relu")


def known_table(path: Path, rows: int = 600, seed: int = 0) -> Path:
    """Columns a, b, c (numeric) and colour (red/green/blue); the label is 'yes' when a + 1.5 [colour = red] > 0.5."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "c": rng.uniform(-1, 1, size=rows),
        }
    )
    frame["label"] = np.where(frame["a"] + 1.5 * (frame["colour"] == "red") > 0.5, "yes", "no")
    frame.to_csv(path, index=False)
    return path


@dataclass
class Exported:
    data: PreparedData
    single: Path
    ensemble: Path


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    folder = tmp_path_factory.mktemp("explain")
    data = load_data(DataSpec(dataset=None, path=str(known_table(folder / "known.csv")), target="label"))
    members = []
    for seed in (0, 1):
        result = train_mlp(NET, data, TrainSettings(batch_size=32, epochs=40, lr=3e-3, seed=seed))
        members.append(Member(NET, result.state_dict, record={"seed": seed}))
    metadata = {"metric": "accuracy", "study": "known"}
    single = export_model(
        folder / "single",
        net=NET,
        state_dict=members[0].state_dict,
        preprocessing=data.preprocessing,
        metadata=metadata,
    )
    ensemble = export_ensemble(
        folder / "ensemble", members=members, preprocessing=data.preprocessing, metadata=metadata
    )
    return Exported(data, single, ensemble)
