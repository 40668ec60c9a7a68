"""Opening a study: its storage, the Optuna study, and the check that the stored study matches the spec."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

import optuna

from ..errors import UserError
from .spec import StudySpec
from ..redaction import redact
from .storage import JournalDamaged, default_dir, describe_storage, open_storage, retry

FINGERPRINT = "population_fingerprint"
SPEC_TEXT = "spec_toml"
# Keys of the study TOML that do not change which models are trained or how.
_NOT_FINGERPRINTED = ("description", "storage", "workers", "measure_latency", "time_limit")


@dataclass
class StudySession:
    spec: StudySpec
    storage: optuna.storages.BaseStorage
    study: optuna.Study
    location: str  # printable (credentials redacted)


def fingerprint(spec: StudySpec) -> str:
    data = tomllib.loads(spec.text)
    for key in _NOT_FINGERPRINTED:
        data.pop(key, None)
    return json.dumps(data, sort_keys=True)


def study_dir(spec: StudySpec, directory: str | None) -> Path:
    return Path(directory) if directory else default_dir(spec.name)


def open_study(spec: StudySpec, *, directory: str | None = None, storage_url: str | None = None,
               create: bool = True) -> StudySession:
    """Open (or create) the study of ``spec``. Refuses a stored study created from a different population."""
    url = storage_url or spec.storage
    folder = study_dir(spec, directory)
    try:
        storage = open_storage(url, folder, create=create)
    except JournalDamaged as exc:
        raise JournalDamaged(str(exc).replace("study repair SPEC", f"study repair {spec.path}")) from None
    location = describe_storage(url, folder)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if create:
        study = retry(lambda: optuna.create_study(study_name=spec.name, storage=storage, direction="minimize",
                                                  load_if_exists=True), what="opening the study")
    else:
        try:
            study = retry(lambda: optuna.load_study(study_name=spec.name, storage=storage), what="opening the study")
        except KeyError:
            raise UserError(f"no study named {spec.name!r} in {location}") from None
    stored = study.user_attrs.get(FINGERPRINT)
    mine = fingerprint(spec)
    if stored is None and create:
        study.set_user_attr(FINGERPRINT, mine)
        study.set_user_attr(SPEC_TEXT, redact(spec.text))  # the spec may name the storage URL
    elif stored is not None and stored != mine:
        raise UserError(f"the study {spec.name!r} in {location} was created from a different spec (spaces, n, seed, "
                        f"data, proxy or windows changed); use another name or --dir to start a new study")
    return StudySession(spec=spec, storage=storage, study=study, location=location)
