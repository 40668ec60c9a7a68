"""A study as a table: one row per model of the population, for status, export and the analysis."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from .session import StudySession, open_study, read_journal_study, read_postgres_study
from .snapshot import trial_views
from .spec import StudySpec
from .trials import (ERROR, HEARTBEAT, INDEX, INTERRUPTED, LOST, SPACE, SUPERSEDED, WORKER, decode_params,
                     model_states)

STATUSES = ("complete", "running", "failed", "pending")


def model_rows(session: StudySession) -> list[dict[str, Any]]:
    """Every model of the population with its status and, once trained, its metrics (one read of the study)."""
    return _rows(session.spec, trial_views(session.study, session.storage, None, params=True))


def stored_model_rows(spec: StudySpec, *, directory: str | None, storage_url: str | None
                      ) -> tuple[str, list[dict[str, Any]]]:
    """``model_rows`` of a study this process has not opened (an export, an analysis of a study spec), and where
    the study is."""
    location, trials = _stored_trials(spec, directory, storage_url, None, params=True)
    return location, _rows(spec, trials)


def _rows(spec: StudySpec, trials: list) -> list[dict[str, Any]]:
    """``model_rows`` from every trial of the study with all its attributes and parameters."""
    states = model_states(trials, spec.population_sizes, stale_after=spec.stale_after,
                          max_attempts=spec.max_attempts)
    queued = {(t.user_attrs.get("space"), t.user_attrs.get("model_index")): t for t in trials if "spec" in t.user_attrs}
    rows = []
    for (label, index), state in states.items():
        trial = state.trial or queued.get((label, index))
        attrs = trial.user_attrs if trial is not None else {}
        row: dict[str, Any] = {
            "space": label, "model_index": index, "status": state.status,
            "diverged": bool(state.status == "complete" and attrs.get("diverged")),
            "val_error": attrs.get("val_error") if state.status == "complete" else None,
            "best_val_error": attrs.get("best_val_error") if state.status == "complete" else None,
            "train_status": attrs.get("train_status") if state.status == "complete" else None,
            "flops": attrs.get("flops"), "params": attrs.get("params"), "acts": attrs.get("acts"),
            "mac": attrs.get("mac"), "latency_ms": trusted_latency(attrs) if state.status == "complete" else None,
            "latency_cv": attrs.get("latency_cv") if state.status == "complete" else None,
            "seconds": attrs.get("seconds") if state.status == "complete" else None,
            "epochs": attrs.get("epochs") if state.status == "complete" else None,
            "worker": attrs.get(WORKER), "attempts": state.attempts,
            "error_message": attrs.get(ERROR) if state.status == "failed" else None,
        }
        if trial is not None:
            row.update(decode_params(trial))
        row["spec"] = attrs.get("spec")
        rows.append(row)
    return rows


_STATUS_ATTRS = (SPACE, INDEX, HEARTBEAT, SUPERSEDED, INTERRUPTED, LOST, ERROR, "diverged", "val_error", "flops",
                 "seconds")


def trusted_latency(attrs: dict[str, Any]) -> float | None:
    """A model's stored latency, or None where its measurement was marked unreliable (its passes disagreed:
    proxy/latency.py), so that a latency-normalised EDF leaves it out rather than binning it by noise."""
    return None if attrs.get("latency_reliable") is False else attrs.get("latency_ms")


def status_summary(session: StudySession) -> dict[str, Any]:
    """The status (see ``summarize_status``) of an open study: each trial's few status attributes, in one pass."""
    return summarize_status(session.spec, session.location, trial_views(session.study, session.storage, _STATUS_ATTRS))


def stored_status(spec: StudySpec, *, directory: str | None, storage_url: str | None) -> dict[str, Any]:
    """The status of a study this process has not opened."""
    return summarize_status(spec, *_stored_trials(spec, directory, storage_url, _STATUS_ATTRS))


def _stored_trials(spec: StudySpec, directory: str | None, storage_url: str | None, keys: tuple[str, ...] | None,
                   *, params: bool = False) -> tuple[str, list]:
    """Where the study is, and its trials with the attributes in ``keys`` (None: all) and, with ``params``, their
    parameters, read without Optuna's storage where it costs the most: PostgreSQL through a plain engine
    (Optuna's set-up of its storage costs a fresh process most of a second, and its reader builds an object per
    trial, attribute and parameter); a journal straight from its file when named attributes without parameters
    are wanted, all that reader reads (Optuna replays every record, seconds at 10,000 models); the rest through
    Optuna."""
    url = storage_url or spec.storage
    if url and url.startswith("postgresql+"):
        return read_postgres_study(spec, url, keys, params=params)
    if url or params or keys is None:
        session = open_study(spec, directory=directory, storage_url=url, create=False)
        return session.location, trial_views(session.study, session.storage, keys, params=params)
    return read_journal_study(spec, directory, keys)


def summarize_status(spec: StudySpec, location: str, views: list) -> dict[str, Any]:
    """Per space: target and counts of complete/running/failed/pending/diverged models, best so far, ETA; and
    the models whose failure budget is spent."""
    states = model_states(views, spec.population_sizes, stale_after=spec.stale_after, max_attempts=spec.max_attempts)
    spaces: dict[str, Any] = {}
    for entry in spec.spaces:
        mine = [s for s in states.values() if s.label == entry.label]
        complete = [s for s in mine if s.status == "complete"]
        best = min(complete, key=lambda s: (s.trial.user_attrs["val_error"], s.trial.user_attrs.get("flops") or 0),
                   default=None)
        spaces[entry.label] = {
            "space": entry.space, "target": entry.n,
            **{status: sum(s.status == status for s in mine) for status in STATUSES},
            "diverged": sum(s.diverged for s in mine),
            "best_val_error": best.trial.user_attrs["val_error"] if best else None,
            "best_model_index": best.index if best else None,
        }
    seconds = [s.trial.user_attrs["seconds"] for s in states.values()
               if s.status == "complete" and s.trial.user_attrs.get("seconds") is not None]
    remaining = sum(s.status in ("pending", "running") for s in states.values())
    running = max(1, sum(s.status == "running" for s in states.values()))
    eta = (sum(seconds) / len(seconds)) * remaining / running if seconds and remaining else (0.0 if not remaining else None)
    failed = [{"space": s.label, "model_index": s.index, "failures": s.failures,
               "error": s.trial.user_attrs.get(ERROR)} for s in states.values() if s.status == "failed"]
    return {"study": spec.name, "storage": location, "total": spec.total,
            "complete": sum(s.status == "complete" for s in states.values()), "eta_seconds": eta, "spaces": spaces,
            "failed_models": failed, "time": time.time()}


def load_study_table(spec_path: str, *, dir: str | None = None, storage: str | None = None
                     ) -> tuple["pd.DataFrame", dict[str, Any]]:
    """Complete models as an analysis table (``error`` = val error in %, diverged at chance) and the study's
    metadata: name, dataset, proxy, seed and the spec text."""
    import pandas as pd  # here, not at the top: `study status` imports this module and needs no pandas

    from .spec import load_study_spec

    spec = load_study_spec(spec_path)
    location, rows = stored_model_rows(spec, directory=dir, storage_url=storage)
    rows = [r for r in rows if r["status"] == "complete"]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.rename(columns={"val_error": "error", "latency_ms": "latency"})
    from ..proxy.config import ProxyConfig
    from ..redaction import redact

    meta = {"name": spec.name, "dataset": spec.dataset, "proxy": ProxyConfig.from_dict(spec.proxy).to_dict(),
            "seed": spec.seed,
            "spec_toml": redact(spec.text), "storage": location}
    return frame, meta


EXPORT_FORMATS = (".csv", ".parquet", ".jsonl")


def check_export_path(path: str) -> None:
    """Before reading the study: a known format, and a place the file can go."""
    from ..errors import UserError
    from ..userfiles import check_output

    if not path.endswith(EXPORT_FORMATS):
        raise UserError(f"--out {path}: use a .csv, .parquet or .jsonl file")
    check_output(path, "export")


def export_rows(rows: list[dict[str, Any]], path: str) -> None:
    """Write rows as CSV, Parquet or JSONL, by the file's extension."""
    from ..userfiles import write_output

    import pandas as pd

    check_export_path(path)
    frame = pd.DataFrame(rows)
    if path.endswith(".csv"):
        data: str | bytes = frame.to_csv(index=False)
    elif path.endswith(".parquet"):
        data = frame.to_parquet(index=False)
    else:
        data = "".join(json.dumps(row) + "\n" for row in rows)
    write_output(path, data, "export")
