"""What a report shows, loaded from a session directory or a play log, as plain arrays and numbers.

Both inputs become one :class:`Run`: sample instants on the engine clock (frame capture instants of a
session; for a play log, the capture instants of the frames the model decided on), the schedule slot
of each sample, the held state of each action over time and the press/release events.

Pacing (:func:`pacing`): the ideal schedule is ``s0 + k * period``. A play log knows the slot k exactly
(the capture loop's tick number); a session stores only timestamps, so k is found from the phase of the
bulk of the samples (their circular mean, modulo the period): a sample's slot is the last one due no
more than a quarter period after it. That is exact while each sample is less than a quarter period
earlier and less than three quarters later than the bulk's phase, late first frame included (the pacer
drops a tick that is a whole period late, so a slot is never shared). The origin s0 is where no sample
is early: the smallest ``t[i] - k[i] * period``. A sample is never captured before its deadline, so
that schedule is the closest one the samples allow, and each error is a lateness, >= 0 (an origin on
the first sample would shift every error by that sample's own lateness). Missed slots (dropped or
skipped frames) are the gaps.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.errors import EngineError
from engine.session import META, Session, data_dir
from engine.telemetry import HELD_PREFIX, TELEMETRY_FIELDS

Kind = Literal["session", "play log"]


@dataclass
class Run:
    """One session or play log, reduced to what the report draws."""

    kind: Kind
    name: str
    path: Path
    t_ns: np.ndarray  # int64 (N,): sample instants, increasing
    slots: np.ndarray  # int64 (N,): schedule slot of each sample, slots[0] == 0
    period_ns: float  # 0 when unknown (fewer than two samples)
    fps_source: str  # where the period comes from: "meta.json", "tick numbers", "--fps"
    actions: list[str]
    held_t: np.ndarray  # int64 (M,): instants at which `held` was sampled
    held: np.ndarray  # bool (M, A): action a held from held_t[i] until held_t[i + 1]
    event_t: np.ndarray  # int64 (E,)
    event_action: np.ndarray  # int (E,)
    event_value: np.ndarray  # int (E,): 1 press, 0 release
    frames: np.ndarray | None = None  # session frames (memory map), None for play logs
    meta: dict[str, Any] = field(default_factory=dict)
    play: dict[str, np.ndarray] = field(default_factory=dict)  # play log columns, by TELEMETRY name
    # engine-play --takeover --record: (K, 2) int64 [start, end) instants when the person had control
    takeover_spans: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.int64))
    # sessions with axes (mouse motion, pad sticks): names, and float32 (M, K) values sampled at held_t
    axis_names: list[str] = field(default_factory=list)
    axis_values: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))

    @property
    def t0(self) -> int:
        return int(self.t_ns[0]) if len(self.t_ns) else 0

    @property
    def duration_s(self) -> float:
        return float(self.t_ns[-1] - self.t_ns[0]) / 1e9 if len(self.t_ns) > 1 else 0.0

    @property
    def fps(self) -> float:
        return 1e9 / self.period_ns if self.period_ns > 0 else 0.0


def load(path: str | Path, *, fps: float | None = None, data: str | Path | None = None) -> Run:
    """A session directory (or a session name under the data dir) or a play log (.npz / .csv).

    ``fps`` overrides the schedule rate (a play log's is estimated from its tick numbers otherwise).
    Raises EngineError (one line) for a missing, unreadable or unrecognised input.
    """
    p = Path(path)
    if not p.exists():
        named = data_dir(data) / "sessions" / str(path)
        if str(path) and "/" not in str(path) and (named / META).is_file():
            p = named
        else:
            raise EngineError(f"{path} does not exist; give a session directory (or name) or a play log (.npz/.csv)")
    if p.is_dir():
        if not (p / META).is_file():
            raise EngineError(f"{p} is not a session (no {META}); give a session directory or a play log (.npz/.csv)")
        return _load_session(p, fps)
    if p.suffix == ".npz":
        return _play_run(p, _read_npz(p), fps)
    if p.suffix == ".csv":
        return _play_run(p, _read_csv(p), fps)
    raise EngineError(f"{p} is neither a session directory nor a play log (.npz/.csv from engine-play --log)")


def _load_session(path: Path, fps: float | None) -> Run:
    try:
        ses = Session.open(path)  # a damaged session raises StorageError, already one line
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise EngineError(f"cannot read the session {path}: {e}; it is damaged or not a session") from e
    t = np.asarray(ses.timestamps, np.int64)
    period = 1e9 / (fps or ses.fps)
    slots = session_slots(t, period)
    ev = ses.events
    return Run(
        kind="session", name=ses.name, path=path, t_ns=t, slots=slots, period_ns=period,
        fps_source="--fps" if fps else "meta.json", actions=ses.actions_names, held_t=t,
        held=np.asarray(ses.actions, bool).reshape(len(t), len(ses.actions_names)),
        event_t=np.asarray(ev["t_ns"], np.int64), event_action=np.asarray(ev["action"], np.int64),
        event_value=np.asarray(ev["value"], np.int64), frames=ses.frames, meta=dict(ses.meta),
        takeover_spans=np.asarray((ses.meta.get("takeover") or {}).get("spans_ns", []), np.int64).reshape(-1, 2),
        axis_names=list(ses.axis_names), axis_values=np.asarray(ses.axes, np.float32),
    )


EARLY_SLACK = 0.25  # periods: how much earlier than the bulk's phase a sample may be and keep its slot


def session_slots(t: np.ndarray, period: float) -> np.ndarray:
    """Schedule slot of each capture instant ``t`` (int64 ns, increasing), ``slots[0] == 0``; see the module
    docs. The bulk's phase is their circular mean, so a late first frame (or any one late frame) does not
    move it, and phases near a slot boundary do not wrap around as a plain mean would."""
    if not len(t):
        return np.zeros(0, np.int64)
    x = (t - t[0]).astype(np.float64) / period  # periods since the first sample
    phase = float(np.angle(np.mean(np.exp(2j * np.pi * x)))) / (2 * np.pi)  # in (-0.5, 0.5]
    k = np.floor(x - phase + EARLY_SLACK).astype(np.int64)
    return k - k[0]


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            cols = {k: np.asarray(z[k]) for k in z.files}
    except OSError as e:
        raise EngineError(f"cannot read {path}: {e.strerror or e}; check the path and its permissions") from e
    except (ValueError, zipfile.BadZipFile, EOFError):
        raise EngineError(f"{path} is not a readable .npz archive; give an engine-play --log file or a session "
                          "directory") from None
    missing = [c for c in (*TELEMETRY_FIELDS, "decision", "actions") if c not in cols]
    if missing:
        raise EngineError(f"{path} is not a play log: it has no {', '.join(missing)}; "
                          "give an engine-play --log file or a session directory")
    return cols


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    try:
        with open(path) as f:
            header = f.readline().strip().split(",")
            missing = [c for c in TELEMETRY_FIELDS if c not in header]
            if missing:
                raise EngineError(f"{path} is not a play log: its header has no {', '.join(missing)}; "
                                  "give an engine-play --log file or a session directory")
            body = f.read()
        # np.loadtxt warns on an empty body; a log of a run that made no decision is valid, just empty.
        table = np.zeros((0, len(header)), np.int64) if not body.strip() else \
            np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.int64, ndmin=2).reshape(-1, len(header))
    except OSError as e:
        raise EngineError(f"cannot read {path}: {e.strerror}; check the path and its permissions") from e
    except ValueError as e:
        raise EngineError(f"{path} is not a valid play log CSV ({e})") from e
    cols = {name: table[:, i] for i, name in enumerate(header)}
    held = [c for c in header if c.startswith(HELD_PREFIX)]
    cols["decision"] = np.stack([cols[c] for c in held], axis=1) if held else np.zeros((len(table), 0), np.int64)
    cols["actions"] = np.array([c[len(HELD_PREFIX):] for c in held])
    return cols


def _play_run(path: Path, cols: dict[str, np.ndarray], fps: float | None) -> Run:
    t = cols["t_capture_ns"].astype(np.int64)
    tick = cols["tick"].astype(np.int64)
    n = len(t)
    actions = [str(a) for a in cols["actions"].reshape(-1)]
    if cols["decision"].size != n * len(actions) or any(cols[c].shape != (n,) for c in TELEMETRY_FIELDS):
        raise EngineError(f"{path} is a damaged play log: its columns disagree on the number of decisions")
    decision = cols["decision"].reshape(n, len(actions)).astype(bool)
    if n and (np.any(np.diff(t) < 0) or np.any(np.diff(tick) < 0)):
        raise EngineError(f"{path} is a damaged play log: capture instants or ticks go backwards")
    slots = tick - tick[0] if n else tick
    if fps:
        period, source = 1e9 / fps, "--fps"
    elif n > 1 and slots[-1] > 0:
        # The capture loop's deadlines are exactly t0 + tick * period, and each capture instant is its
        # deadline plus some lateness. The median slope over pairs half the log apart (Theil-Sen on a
        # fixed lag) divides that lateness by a long tick distance and ignores the late outliers that
        # would tilt a least-squares fit.
        h = max(1, n // 2)
        dk = slots[h:] - slots[:-h]
        ok = dk > 0
        period = float(round(np.median((t[h:] - t[:-h])[ok] / dk[ok]))) if ok.any() else 0.0
        source = "tick numbers" if period else "unknown"
    else:
        period, source = 0.0, "unknown"
    t_sent = cols["t_sent_ns"].astype(np.int64)
    change = np.diff(np.vstack([np.zeros((1, len(actions)), bool), decision]).astype(np.int8), axis=0)
    rows, acts = np.nonzero(change)
    order = np.lexsort((acts, rows))
    return Run(
        kind="play log", name=path.name, path=path, t_ns=t, slots=slots, period_ns=period, fps_source=source,
        actions=actions, held_t=t_sent, held=decision, event_t=t_sent[rows[order]],
        event_action=acts[order].astype(np.int64), event_value=(change[rows, acts][order] > 0).astype(np.int64),
        play={c: cols[c].astype(np.int64) for c in TELEMETRY_FIELDS},
    )


# ---------------------------------------------------------------------------------------------------
# derived series and numbers


@dataclass(frozen=True)
class Pacing:
    """Rate and schedule error of a run's samples (all arrays of length N, NaN where undefined)."""

    rate_hz: np.ndarray  # instantaneous rate 1e9 / (t[i] - t[i-1]); rate_hz[0] is NaN
    error_ns: np.ndarray  # t[i] - (s0 + slots[i] * period) >= 0: each sample's lateness (NaN: period unknown)
    gap_t: np.ndarray  # instants (int64) of samples that follow missed slots
    missed: int  # total missed slots
    s0_ns: float = float("nan")  # the schedule's origin (engine clock): min over i of t[i] - slots[i] * period


def pacing(run: Run) -> Pacing:
    t = run.t_ns
    rate = np.full(len(t), np.nan)
    if len(t) > 1:
        dt = np.diff(t).astype(np.float64)
        with np.errstate(divide="ignore"):
            rate[1:] = np.where(dt > 0, 1e9 / dt, np.inf)
    error, s0 = np.full(len(t), np.nan), float("nan")
    if run.period_ns and len(t):
        # Relative to t0 first, so float64 keeps nanoseconds on a clock that has run for days.
        offset = (t - run.t0).astype(np.float64) - run.slots * run.period_ns
        error = offset - offset.min()
        s0 = run.t0 + float(offset.min())
    jump = np.diff(run.slots)
    gaps = np.flatnonzero(jump > 1) + 1
    return Pacing(rate, error, t[gaps], int((jump[jump > 1] - 1).sum()), s0)


def held_intervals(run: Run, action: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) instants of the intervals where ``action`` was held; the last sample counts for one
    period (or until the last sample instant when the period is unknown)."""
    col = run.held[:, action]
    if not len(col):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    edges = np.diff(np.concatenate([[0], col.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    tail = int(run.held_t[-1] + (run.period_ns or 0))
    t_ext = np.concatenate([run.held_t, [tail]])
    return t_ext[starts], t_ext[ends]


def frame_size(meta: dict[str, Any]) -> str:
    """'WxH' of a session's frames (meta.json stores the array shape, H first)."""
    shape = list(meta.get("frame_shape", []))
    return f"{shape[1]}x{shape[0]}" if len(shape) >= 2 else "?"


def _ms(values_ns: np.ndarray) -> dict[str, float]:
    v = np.asarray(values_ns, np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return {}
    return {"p50": float(np.percentile(v, 50)) / 1e6, "p99": float(np.percentile(v, 99)) / 1e6,
            "max": float(v.max()) / 1e6}


def summary(run: Run, pace: Pacing) -> list[tuple[str, str]]:
    """The report's numbers as (label, value) rows, for the HTML page and the terminal."""
    n = len(run.t_ns)
    unit = "frames" if run.kind == "session" else "decisions"
    rows: list[tuple[str, str]] = [("input", str(run.path)), ("kind", run.kind)]
    if run.kind == "session":
        m = run.meta
        rows += [("game", str(m.get("game", ""))), ("status", str(m.get("status", ""))),
                 ("created", str(m.get("created", ""))),
                 ("frame size", f"{frame_size(m)} {m.get('color', '')}")]
    rows += [(unit, str(n)), ("duration", f"{run.duration_s:.2f} s")]
    if run.period_ns:
        rows.append(("target rate", f"{run.fps:.3f} Hz (from {run.fps_source})"))
    if n > 1:
        rows.append(("achieved rate", f"{(n - 1) / run.duration_s:.3f} Hz" if run.duration_s else "-"))
        iv = _ms(np.diff(run.t_ns))
        rows.append(("interval p50 / p99 / max", f"{iv['p50']:.3f} / {iv['p99']:.3f} / {iv['max']:.3f} ms"))
        err = _ms(pace.error_ns)
        if err:
            rows.append(("pacing error (lateness) p50 / p99 / max",
                         f"{err['p50']:.3f} / {err['p99']:.3f} / {err['max']:.3f} ms"))
        rows.append(("missed schedule slots", f"{pace.missed} in {len(pace.gap_t)} gaps"))
    if run.kind == "session" and "dropped" in run.meta:
        rows.append(("dropped (meta.json)", str(run.meta["dropped"])))
    if run.kind == "session" and run.meta.get("blank_frames"):
        spans = ", ".join(f"{a}-{b}" for a, b in run.meta.get("blank_spans", [])[:5])
        rows.append(("BLANK FRAMES (one uniform value)",
                     f"{run.meta['blank_frames']} frames (frames {spans}): the capture saw nothing there; "
                     "leave them out of training"))
    if run.kind == "session" and "takeover" in run.meta:
        person = float((run.takeover_spans[:, 1] - run.takeover_spans[:, 0]).sum()) / 1e9
        share = person / run.duration_s if run.duration_s else 0.0
        rows.append(("takeovers (engine-play --takeover)",
                     f"{len(run.takeover_spans)}; the person had control {person:.2f} s ({share:.0%} of the time)"))
    if run.play and n:
        lat, inv = run.play["t_sent_ns"] - run.play["t_capture_ns"], run.play["invoke_ns"]
        for label, v in (("capture -> keys", lat), ("capture -> keys minus invoke", lat - inv), ("invoke", inv),
                         ("frame age at invoke", run.play["t_invoke_ns"] - run.play["t_capture_ns"])):
            s = _ms(v)
            rows.append((f"{label} p50 / p99 / max", f"{s['p50']:.3f} / {s['p99']:.3f} / {s['max']:.3f} ms"))
        rows.append(("frames skipped by the model", str(int(run.play["skipped"].sum()))))
    for a, name in enumerate(run.actions):
        held = float(run.held[:, a].mean()) if len(run.held) else 0.0
        presses = int(np.sum((run.event_action == a) & (run.event_value == 1)))
        rows.append((f"action {name}", f"held in {held:.1%} of {unit}, {presses} press{'' if presses == 1 else 'es'}"))
    for k, name in enumerate(run.axis_names):
        v = run.axis_values[:, k].astype(np.float64) if len(run.axis_values) else np.zeros(0)
        if not len(v):
            continue
        rows.append((f"axis {name}", f"min {v.min():.4g}, max {v.max():.4g}, mean |value| {np.abs(v).mean():.4g}; "
                                     f"negative in {np.mean(v < 0):.1%}, zero in {np.mean(v == 0):.1%}, "
                                     f"positive in {np.mean(v > 0):.1%} of {unit}"))
    return rows


__all__ = ["Kind", "Pacing", "Run", "frame_size", "held_intervals", "load", "pacing", "session_slots", "summary"]
