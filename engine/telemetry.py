"""The play log: one record per decision of engine-play (``--log``), written by the play loop and read by
engine-report, so its definition lives below both.

Columns (int64, monotonic-clock ns where a time): ``TELEMETRY_FIELDS``, the per-stage instants
``STAGE_FIELDS`` (issue #19: where the capture-to-keys time goes; a log without them is still a play log),
plus the derived ``frame_age_ns`` (invoke start - capture) and ``latency_ns`` (keys sent - capture), and the
decision, one 0/1 per action.

The stages of one decision, in time order (``STAGES``): captured (grab began, capture thread), grabbed (the
display server's copy returned; a replayed frame has none, 0), published (converted, in the ring), woken
(the play loop's wait returned, before it took the GIL back), fed (window written into the input tensor),
invoke done, decoded (actions chosen), sent (key events written and flushed to the display server: the
actuator flushes inside its apply, so the two are one instant).
On disk: .npz with those arrays, ``decision`` (N, A) uint8 and ``actions`` (the names); or .csv with a
header line, the decision as one ``held_<action>`` column per action.

A model with axes (issue 14) adds ``axes`` (N, K) float32, the axis values sent with each decision, and
``axis_names`` to the npz; one ``axis_<name>`` column per axis to the CSV.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HELD_PREFIX = "held_"  # a CSV log's decision column of an action is HELD_PREFIX + its name
AXIS_PREFIX = "axis_"  # ... and of an axis, AXIS_PREFIX + its name
TELEMETRY_FIELDS = ("tick", "t_capture_ns", "t_invoke_ns", "invoke_ns", "t_sent_ns", "skipped", "events")
STAGE_FIELDS = ("t_grabbed_ns", "t_published_ns", "t_woken_ns", "t_fed_ns", "t_decoded_ns")
# (stage name, column of its instant), in time order; "t_invoked_ns" is derived (t_invoke_ns + invoke_ns).
STAGES = (("captured", "t_capture_ns"), ("grabbed", "t_grabbed_ns"), ("published", "t_published_ns"),
          ("woken", "t_woken_ns"), ("fed", "t_fed_ns"), ("invoke done", "t_invoked_ns"), ("decoded", "t_decoded_ns"),
          ("sent+flushed", "t_sent_ns"))


@dataclass
class Telemetry:
    """One row per decision: when the newest frame was captured, when invoke started and how long it took,
    when the keys were sent, frames skipped before it, and the decision itself."""

    n_actions: int
    rows: list[tuple[int, ...]] = field(default_factory=list)
    decisions: list[np.ndarray] = field(default_factory=list)
    axis_names: tuple[str, ...] = ()
    axes: list[np.ndarray] = field(default_factory=list)

    def add(self, tick: int, t_cap: int, t_inv: int, inv_ns: int, t_sent: int, skipped: int, events: int,
            decision: np.ndarray, axes: np.ndarray | None = None, stages: tuple[int, ...] = (0, 0, 0, 0, 0)) -> None:
        """``axes``: the axis values sent (a model with axes); ``stages``: the STAGE_FIELDS instants (grabbed,
        published, woken, fed, decoded)."""
        self.rows.append((tick, t_cap, t_inv, inv_ns, t_sent, skipped, events, *stages))
        self.decisions.append(decision)
        if self.axis_names:
            self.axes.append(np.zeros(len(self.axis_names), np.float32) if axes is None else axes)

    def arrays(self) -> dict[str, np.ndarray]:
        names = (*TELEMETRY_FIELDS, *STAGE_FIELDS)
        rows = np.array(self.rows, np.int64).reshape(-1, len(names))
        out: dict[str, np.ndarray] = {name: rows[:, i] for i, name in enumerate(names)}
        out["decision"] = (np.array(self.decisions, np.uint8).reshape(len(self.decisions), self.n_actions))
        out["frame_age_ns"] = out["t_invoke_ns"] - out["t_capture_ns"]
        out["latency_ns"] = out["t_sent_ns"] - out["t_capture_ns"]
        if self.axis_names:
            out["axes"] = np.array(self.axes, np.float32).reshape(-1, len(self.axis_names))
        return out

    def save(self, path: Path, actions: list[str]) -> None:
        """Write to ``path`` exactly: CSV when its suffix is .csv, else npz (through a file object, so
        NumPy does not append .npz to the name the user gave)."""
        data = self.arrays()
        if path.suffix.lower() == ".csv":
            numbers = (*TELEMETRY_FIELDS, *STAGE_FIELDS, "frame_age_ns", "latency_ns")
            cols = [*numbers, *(f"{HELD_PREFIX}{a}" for a in actions), *(f"{AXIS_PREFIX}{a}" for a in self.axis_names)]
            ints = [data[c] for c in numbers] + [data["decision"]]
            table = np.column_stack([*ints, data["axes"]] if self.axis_names else ints)
            fmt = ["%d"] * (len(cols) - len(self.axis_names)) + ["%.4f"] * len(self.axis_names)
            np.savetxt(path, table, fmt=fmt, delimiter=",", header=",".join(cols), comments="")
        else:
            data["actions"] = np.array(actions)
            if self.axis_names:
                data["axis_names"] = np.array(self.axis_names)
            with path.open("wb") as f:
                np.savez(f, **data)  # type: ignore[arg-type]


def stage_breakdown(data: dict[str, np.ndarray]) -> list[tuple[str, float, float]]:
    """(stage, p50 ms, p99 ms) of the time from each stage's predecessor to it (``STAGES``), the invoke
    included; empty without decisions or stage columns."""
    if not len(data.get("t_capture_ns", ())) or any(c not in data for c in STAGE_FIELDS):
        return []
    at = {col: data[col] for _, col in STAGES if col != "t_invoked_ns"}
    at["t_invoked_ns"] = data["t_invoke_ns"] + data["invoke_ns"]
    stages = [(name, col) for name, col in STAGES if at[col].any()]  # a replay has no "grabbed"
    out = []
    for (_, before), (name, col) in itertools.pairwise(stages):
        d = (at[col] - at[before]) / 1e6
        out.append((name, float(np.percentile(d, 50)), float(np.percentile(d, 99))))
    return out


def breakdown_line(data: dict[str, np.ndarray]) -> str:
    """One line: each stage's share of capture->keys, p50/p99 in ms, e.g. "published 0.41/0.90"."""
    parts = [f"{name} {p50:.3f}/{p99:.3f}" for name, p50, p99 in stage_breakdown(data)]
    return "stages p50/p99 ms after the previous one: " + ", ".join(parts) if parts else ""


__all__ = ["AXIS_PREFIX", "HELD_PREFIX", "STAGES", "STAGE_FIELDS", "TELEMETRY_FIELDS", "Telemetry", "breakdown_line",
           "stage_breakdown"]
