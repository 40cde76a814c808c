"""The `[data] encoder`'s vectors as a study artifact, so workers on other machines and resumes reuse them.

`archsearch.trainers.data` encodes a file's rows once and caches the vectors in a local folder under a
fingerprint of data file and encoder. The search also keeps them in the study's artifact store (where
optuna-dashboard lists them) and records the encoder, the fingerprint and the artifact in the study's
`keys.ENCODER` attribute: a process about to load the data first copies the stored vectors into its local
cache (`fetch_encoded`), so it reads the same vectors the study trained on instead of encoding again. With
the local cache turned off (ARCHSEARCH_CACHE_DIR empty) every process encodes for itself.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import optuna

from archsearch.config import SearchConfig
from archsearch.storage import (
    default_artifact_dir,
    download_file,
    keys,
    open_artifact_store,
    set_study_user_attrs,
    upload_study_file,
)
from archsearch.trainers.data import DataSpec, encoded_file

__all__ = ["artifact_folder", "fetch_encoded", "store_encoded"]


def artifact_folder(config: SearchConfig, url: str) -> Path:
    """Where the study's artifacts live: [study] artifacts, else beside a SQLite file (`default_artifact_dir`)."""
    return Path(config.study.artifacts) if config.study.artifacts else default_artifact_dir(url)


def fetch_encoded(study: optuna.Study, spec: DataSpec, artifact_dir: str | Path) -> bool:
    """Copy the study's stored vectors of `spec`'s data and encoder into the local cache, unless it holds them.

    Returns:
        Whether the local cache now holds them (False: no encoder, cache off, none stored for this fingerprint,
        or the artifact store is elsewhere; `load_data` then encodes).
    """
    stored = study.user_attrs.get(keys.ENCODER)
    if spec.encoder is None or stored is None or not Path(spec.path).is_file():  # no data here: load_data says so
        return False
    digest, cached = encoded_file(spec.encoder, spec.path)
    if cached is None or stored["fingerprint"] != digest:
        return False
    if cached.is_file():
        return True
    if not Path(artifact_dir).is_dir():
        return False
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Downloaded beside the cache and renamed: a reader never sees half a file.
    with tempfile.TemporaryDirectory(dir=cached.parent) as folder:
        part = Path(folder) / cached.name
        if not download_file(open_artifact_store(artifact_dir), stored["artifact_id"], part):
            return False
        part.replace(cached)
    return True


def store_encoded(study: optuna.Study, spec: DataSpec, artifact_dir: str | Path) -> None:
    """After `load_data`: keep the cached vectors as a study artifact and record the encoder, once per fingerprint."""
    if spec.encoder is None:
        return
    digest, cached = encoded_file(spec.encoder, spec.path)
    stored = study.user_attrs.get(keys.ENCODER)
    if cached is None or not cached.is_file() or (stored is not None and stored["fingerprint"] == digest):
        return
    artifact_id = upload_study_file(open_artifact_store(artifact_dir), cached, study)
    set_study_user_attrs(
        study, {keys.ENCODER: {"name": spec.encoder, "fingerprint": digest, "artifact_id": artifact_id}}
    )
