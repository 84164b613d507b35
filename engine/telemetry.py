"""The play log: one record per decision of engine-play (``--log``), written by the play loop and read by
engine-report, so its definition lives below both.

Columns (int64, monotonic-clock ns where a time): ``TELEMETRY_FIELDS``, plus the derived ``frame_age_ns``
(invoke start - capture) and ``latency_ns`` (keys sent - capture), and the decision, one 0/1 per action.
On disk: .npz with those arrays, ``decision`` (N, A) uint8 and ``actions`` (the names); or .csv with a
header line, the decision as one ``held_<action>`` column per action.

A model with axes (issue 14) adds ``axes`` (N, K) float32, the axis values sent with each decision, and
``axis_names`` to the npz; one ``axis_<name>`` column per axis to the CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HELD_PREFIX = "held_"  # a CSV log's decision column of an action is HELD_PREFIX + its name
AXIS_PREFIX = "axis_"  # ... and of an axis, AXIS_PREFIX + its name
TELEMETRY_FIELDS = ("tick", "t_capture_ns", "t_invoke_ns", "invoke_ns", "t_sent_ns", "skipped", "events")


@dataclass
class Telemetry:
    """One row per decision: when the newest frame was captured, when invoke started and how long it took,
    when the keys were sent, frames skipped before it, and the decision itself."""

    n_actions: int
    rows: list[tuple[int, int, int, int, int, int, int]] = field(default_factory=list)
    decisions: list[np.ndarray] = field(default_factory=list)
    axis_names: tuple[str, ...] = ()
    axes: list[np.ndarray] = field(default_factory=list)

    def add(self, tick: int, t_cap: int, t_inv: int, inv_ns: int, t_sent: int, skipped: int, events: int,
            decision: np.ndarray, axes: np.ndarray | None = None) -> None:
        self.rows.append((tick, t_cap, t_inv, inv_ns, t_sent, skipped, events))
        self.decisions.append(decision)
        if self.axis_names:
            self.axes.append(np.zeros(len(self.axis_names), np.float32) if axes is None else axes)

    def arrays(self) -> dict[str, np.ndarray]:
        rows = np.array(self.rows, np.int64).reshape(-1, len(TELEMETRY_FIELDS))
        out: dict[str, np.ndarray] = {name: rows[:, i] for i, name in enumerate(TELEMETRY_FIELDS)}
        out["decision"] = (np.array(self.decisions, np.uint8).reshape(-1, self.n_actions))
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
            cols = [*TELEMETRY_FIELDS, "frame_age_ns", "latency_ns", *(f"{HELD_PREFIX}{a}" for a in actions),
                    *(f"{AXIS_PREFIX}{a}" for a in self.axis_names)]
            ints = [data[c] for c in (*TELEMETRY_FIELDS, "frame_age_ns", "latency_ns")] + [data["decision"]]
            table = np.column_stack([*ints, data["axes"]] if self.axis_names else ints)
            fmt = ["%d"] * (len(cols) - len(self.axis_names)) + ["%.4f"] * len(self.axis_names)
            np.savetxt(path, table, fmt=fmt, delimiter=",", header=",".join(cols), comments="")
        else:
            data["actions"] = np.array(actions)
            if self.axis_names:
                data["axis_names"] = np.array(self.axis_names)
            with path.open("wb") as f:
                np.savez(f, **data)  # type: ignore[arg-type]


__all__ = ["AXIS_PREFIX", "HELD_PREFIX", "TELEMETRY_FIELDS", "Telemetry"]
