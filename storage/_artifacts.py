"""Trained weights as Optuna artifacts, so optuna-dashboard lists and serves the same files."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import TrialState

from archsearch.storage import keys
from archsearch.storage._attrs import set_study_user_attrs, stored_value
from archsearch.storage._objectives import front_trials, maximizes, quality_trials, quality_value, size_objectives

__all__ = [
    "open_artifact_store",
    "upload_weights",
    "download_weights",
    "drop_weights_beyond_best",
    "upload_study_file",
    "download_file",
]


def open_artifact_store(directory: str | Path) -> FileSystemArtifactStore:
    """A file-system artifact store in `directory`, created when missing."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(directory))


def upload_weights(
    store: FileSystemArtifactStore,
    file_path: str | Path,
    trial: optuna.Trial,
    storage: optuna.storages.BaseStorage,
    *,
    record: bool = True,
) -> str:
    """Attach a weights file to a running trial; returns the artifact id.

    With `record`, the id is also stored as the trial's keys.WEIGHTS user attribute; without, the caller
    stores it (with the trial's other attributes, in one write).
    """
    artifact_id = upload_artifact(
        artifact_store=store,
        file_path=str(file_path),
        study_or_trial=trial,
        storage=storage,
        mimetype="application/octet-stream",
    )
    if record:
        trial.set_user_attr(keys.WEIGHTS, artifact_id)
    return artifact_id


def download_weights(store: FileSystemArtifactStore, artifact_id: str, directory: str | Path) -> Path:
    """Copy an artifact to `directory/model.pt` and return that path.

    Raises:
        FileNotFoundError: The artifact is not in this store (removed, or the store is elsewhere).
    """
    destination = Path(directory) / "model.pt"
    try:
        download_artifact(artifact_store=store, file_path=str(destination), artifact_id=artifact_id)
    except ArtifactNotFound as e:
        raise FileNotFoundError(f"artifact {artifact_id} is not in the artifact store") from e
    return destination


def upload_study_file(store: FileSystemArtifactStore, file_path: str | Path, study: optuna.Study) -> str:
    """Attach a file to the study itself (not a trial), where optuna-dashboard lists it; returns the artifact id."""
    return upload_artifact(
        artifact_store=store, file_path=str(file_path), study_or_trial=study, mimetype="application/octet-stream"
    )


def download_file(store: FileSystemArtifactStore, artifact_id: str, destination: str | Path) -> bool:
    """Copy an artifact to `destination`; False when the store does not hold it (removed, or elsewhere)."""
    try:
        download_artifact(artifact_store=store, file_path=str(destination), artifact_id=artifact_id)
    except (ArtifactNotFound, FileNotFoundError):
        return False
    return True


def drop_weights_beyond_best(study: optuna.Study, store: FileSystemArtifactStore, keep_best_k: int) -> list[int]:
    """Remove stored weights of every completed trial outside the best `keep_best_k`; returns their numbers.

    The trial records stay; only the weight files go, and the study remembers which ones so export can
    say why a trial's weights are missing.
    """
    if keep_best_k <= 0:
        return []
    # Split into parts once past MariaDB's 64 kB column (some 1,600 ids): a long search with keep_best_k.
    dropped_ids = set(stored_value(study.user_attrs, keys.DROPPED_WEIGHTS, []))
    with_weights = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if keys.WEIGHTS in t.user_attrs and t.user_attrs[keys.WEIGHTS] not in dropped_ids
    ]
    reverse = maximizes(study)
    ranked = sorted(
        with_weights,
        key=lambda t: (quality_value(t), -t.number) if reverse else (-quality_value(t), -t.number),
        reverse=True,
    )
    # A multi-objective study's front keeps its weights too: `archsearch export --max-params` may pick any member.
    sizes = size_objectives(study)
    on_front = {t.number for t in front_trials(quality_trials(study), reverse, sizes)} if sizes else set()
    dropped = []
    for trial in [t for t in ranked[keep_best_k:] if t.number not in on_front]:
        artifact_id = trial.user_attrs[keys.WEIGHTS]
        try:
            store.remove(artifact_id)
        except (ArtifactNotFound, FileNotFoundError):
            pass  # another worker removed it first
        dropped_ids.add(artifact_id)
        dropped.append(trial.number)
    if dropped:
        set_study_user_attrs(study, {keys.DROPPED_WEIGHTS: sorted(dropped_ids)})
    return dropped
