"""Opening a study: its storage, the Optuna study, and the check that the stored study matches the spec."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import optuna

from ..errors import UserError
from .spec import StudySpec
from ..redaction import redact
from .snapshot import TrialView, postgres_trial_views, read_journal
from .storage import (JOURNAL_FILE, JournalDamaged, check_journal, describe_storage, folder_of, journal_records,
                      no_study_at, open_engine, open_storage, retry)

FINGERPRINT = "population_fingerprint"
SPEC_TEXT = "spec_toml"
# Keys of the study TOML that do not change which models are trained or how.
_NOT_FINGERPRINTED = ("description", "storage", "dir", "workers", "measure_latency", "time_limit", "launcher")


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
    listed = {e.label: [[m.spec, m.seed] for m in e.listed] for e in spec.spaces if e.listed}
    if listed:  # the models a `models = FILE` table lists are the population, not the file's name
        data["listed models"] = listed
    return json.dumps(data, sort_keys=True)


def study_dir(spec: StudySpec, directory: str | None) -> Path:
    """--dir, else the spec's own ``dir``, else runs/<name>."""
    return folder_of(directory if directory is not None else spec.directory, spec.name)


def open_study(spec: StudySpec, *, directory: str | None = None, storage_url: str | None = None,
               create: bool = True) -> StudySession:
    """Open (or create) the study of ``spec``. Refuses a stored study created from a different population."""
    url = storage_url or spec.storage
    folder = study_dir(spec, directory)
    try:
        storage = open_storage(url, folder, create=create)
    except JournalDamaged as exc:
        raise _naming_the_spec(exc, spec) from None
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
    if stored is None and create:
        study.set_user_attr(FINGERPRINT, fingerprint(spec))
        study.set_user_attr(SPEC_TEXT, redact(spec.text))  # the spec may name the storage URL
    else:
        _refuse_another_population(spec, stored, location)
    return StudySession(spec=spec, storage=storage, study=study, location=location)


def _naming_the_spec(exc: JournalDamaged, spec: StudySpec) -> JournalDamaged:
    """The damage message with the repair command spelled out for this spec."""
    return JournalDamaged(str(exc).replace("study repair SPEC", f"study repair {spec.path}"))


def _refuse_another_population(spec: StudySpec, stored: str | None, location: str) -> None:
    if stored is not None and stored != fingerprint(spec):
        raise UserError(f"the study {spec.name!r} in {location} was created from a different spec (spaces, n, seed, "
                        f"data, proxy or windows changed); use another name or --dir to start a new study")


def read_journal_study(spec: StudySpec, directory: str | None, keys: Iterable[str]) -> tuple[str, list[TrialView]]:
    """The location of the study's journal and its trials with the user attributes in ``keys``, read straight
    from the file (snapshot.read_journal) with the checks open_study makes: for a status, without paying for
    Optuna's replay of the whole journal."""
    folder = study_dir(spec, directory)
    journal, location = folder / JOURNAL_FILE, describe_storage(None, folder)
    if not journal.exists():
        raise no_study_at(journal)
    try:
        check_journal(journal)
        study = read_journal(journal_records(journal, frozenset(keys)), spec.name, keys)
    except JournalDamaged as exc:
        raise _naming_the_spec(exc, spec) from None
    if study is None:
        raise UserError(f"no study named {spec.name!r} in {location}")
    _refuse_another_population(spec, study.user_attrs.get(FINGERPRINT), location)
    return location, study.trials


def read_postgres_study(spec: StudySpec, url: str, keys: Iterable[str] | None, *, params: bool = False
                        ) -> tuple[str, list[TrialView]]:
    """``read_journal_study`` for a study on PostgreSQL (``keys`` None: every attribute; ``params``: and the
    parameters): a few statements on Optuna's tables through a plain engine, with the checks open_study makes,
    instead of Optuna's storage set-up (table creation, schema check) that a fresh process pays for before its
    first read."""
    from sqlalchemy import text

    location = redact(url)
    engine = open_engine(url)

    def read() -> tuple[int, str | None] | None:
        with engine.connect() as connection:
            if connection.execute(text("SELECT to_regclass('studies')")).scalar() is None:
                return None  # a database Optuna never used
            row = connection.execute(text("""
                SELECT s.study_id, a.value_json FROM studies s
                LEFT JOIN study_user_attributes a ON a.study_id = s.study_id AND a.key = :key
                WHERE s.study_name = :name"""), {"name": spec.name, "key": FINGERPRINT}).first()
            return None if row is None else (row[0], row[1])

    try:
        found = retry(read, what="reading the study")
        if found is None:
            raise UserError(f"no study named {spec.name!r} in {location}")
        study_id, stored = found
        _refuse_another_population(spec, json.loads(stored) if stored is not None else None, location)
        keys = tuple(keys) if keys is not None else None
        return location, retry(lambda: postgres_trial_views(engine, study_id, keys, params=params),
                               what="reading the study")
    finally:
        engine.dispose()
