"""Lay out the report image: header, frame strip, action timeline, rate, pacing error and, for play
logs, invoke time and latency histograms. All panels over time share one time axis (seconds from
the first sample), so a gap or a stall lines up across them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.report.canvas import (
    AXIS,
    GRID,
    MUTED,
    TEXT,
    Canvas,
    Color,
    area_resize,
    fmt_tick,
    nice_ceil,
    nice_ticks,
)
from engine.report.data import Pacing, Run, frame_size, held_intervals

WIDTH = 1200
LEFT, RIGHT = 120, 28  # plot margins: lane labels and y tick labels live in LEFT
PAD = 18
THUMBS = 8
THUMB_MAX_H = 150
LANE_H, LANE_GAP = 20, 4
PANEL_H = 130
HIST_H = 150
HIST_LABEL_ROOM = 24  # rows at the top of a histogram kept free of bars for its "tallest bar" label

GAP_RED: Color = (214, 48, 49)
TAKEOVER: Color = (240, 180, 40)  # the person in control (engine-play --takeover)
LINE_BLUE: Color = (31, 100, 200)
TARGET_GREEN: Color = (40, 150, 80)
P99_ORANGE: Color = (230, 126, 34)
PALETTE: list[Color] = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def _lighten(c: Color, f: float = 0.55) -> Color:
    r, g, b = c
    return round(r + (255 - r) * f), round(g + (255 - g) * f), round(b + (255 - b) * f)


BAR_BLUE: Color = _lighten(LINE_BLUE, 0.3)  # histogram bars


class _TimeAxis:
    """Maps engine-clock instants to x pixels across the plot width."""

    def __init__(self, run: Run) -> None:
        self.t0 = run.t0
        end = int(run.t_ns[-1]) if len(run.t_ns) else 0
        if len(run.held_t):
            end = max(end, int(run.held_t[-1] + run.period_ns))
        self.span = max(end - self.t0, run.period_ns, 1e6)  # at least 1 ms: one sample still gets an axis
        self.x0, self.x1 = LEFT, WIDTH - RIGHT

    def x(self, t: np.ndarray | int) -> np.ndarray:
        return self.x0 + (np.asarray(t, np.float64) - self.t0) / self.span * (self.x1 - self.x0)

    def clip(self, xs: np.ndarray) -> np.ndarray:
        return np.clip(xs, self.x0, self.x1)

    def inside(self, t: np.ndarray) -> np.ndarray:
        """x of the instants within the axis (a session's raw events may start before its first frame)."""
        xs = self.x(t)
        return xs[(xs >= self.x0) & (xs < self.x1)]

    def draw(self, c: Canvas, y: int) -> int:
        """Tick labels in seconds under a plot ending at y; returns the y below them."""
        ticks = nice_ticks(0, self.span / 1e9, 10)
        step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
        for v in ticks:
            x = float(self.x(self.t0 + v * 1e9))
            c.vline(x, y, y + 4, AXIS)
            c.text(x, y + 5, fmt_tick(v, step), MUTED, 13, "center")
        c.text(self.x1, y + 18, "time since the first sample (s)", MUTED, 13, "right")
        return y + 34


def _panel(c: Canvas, top: int, height: int, title: str, lo: float, hi: float, unit: str,
           note: str = "") -> Callable[[np.ndarray], np.ndarray]:
    """A framed plot area with y grid and labels; returns the value -> y pixel map (clipped to it)."""
    c.text(LEFT, top, title, TEXT, 16)
    if note:
        c.text(WIDTH - RIGHT, top + 2, note, MUTED, 13, "right")
    y0, y1 = top + 20, top + 20 + height
    ticks = nice_ticks(lo, hi, 4)
    step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    span = hi - lo if hi > lo else 1.0

    # Onto the rows inside the frame (y0 + 1 .. y1 - 2), so a series sitting at lo or hi (zero lateness)
    # is drawn beside the frame, not under it.
    def ymap(v: np.ndarray) -> np.ndarray:
        return np.clip(y1 - 2 - (np.asarray(v, np.float64) - lo) / span * (height - 3), y0 + 1, y1 - 2)

    for v in ticks:
        y = float(ymap(np.array(v)))
        c.hline(LEFT, WIDTH - RIGHT, y, GRID)
        c.text(LEFT - 6, y - 7, fmt_tick(v, step), MUTED, 13, "right")
    c.text(LEFT - 6, y0 - 18, unit, MUTED, 13, "right")
    c.frame(LEFT, y0, WIDTH - RIGHT, y1, AXIS)
    return ymap


def _header(c: Canvas, run: Run, pace: Pacing, y: int) -> int:
    kind = f"session {run.name}" if run.kind == "session" else f"play log {run.name}"
    c.text(PAD, y, f"engine report: {kind}", TEXT, 26)
    n = len(run.t_ns)
    unit = "frames" if run.kind == "session" else "decisions"
    rate = f"{(n - 1) / run.duration_s:.2f} Hz achieved" if n > 1 and run.duration_s else "rate unknown"
    target = f" of {run.fps:.2f} target ({run.fps_source})" if run.period_ns else ""
    line = f"{n} {unit} over {run.duration_s:.2f} s, {rate}{target}, {pace.missed} missed slots in " \
           f"{len(pace.gap_t)} gaps"
    if run.kind == "session":
        m = run.meta
        line += f"; game {m.get('game', '')}, {m.get('status', '')}, {frame_size(m)} {m.get('color', '')}"
    c.text(PAD, y + 30, line, MUTED, 16)
    return y + 58


Rect = tuple[int, int, int, int]


@dataclass
class Rendered:
    """The report image and where things are on it (for tests and for anyone cropping it)."""

    image: np.ndarray  # (H, WIDTH, 3) uint8 RGB
    thumbs: list[tuple[int, Rect]] = field(default_factory=list)  # (frame index, (x, y, w, h)) of the strip
    lanes: list[tuple[str, Rect]] = field(default_factory=list)  # (action, (x, y, w, h)) of the timeline
    bar_colors: list[Color] = field(default_factory=list)  # the held-bar colour of each lane
    # name -> (x, y, w, h) inside the frame of each plot ("rate", "pacing"; play logs also "invoke",
    # "latency", "latency minus invoke"), and the colour its data is drawn in there
    panels: dict[str, Rect] = field(default_factory=dict)
    panel_ink: dict[str, Color] = field(default_factory=dict)


def _plot_area(top: int, height: int) -> Rect:
    """Inside the frame that :func:`_panel` draws at ``top``: where the data go."""
    return LEFT + 1, top + 21, WIDTH - RIGHT - LEFT - 2, height - 2


def _strip(c: Canvas, run: Run, axis: _TimeAxis, y: int, out: Rendered) -> int:
    frames = run.frames
    if frames is None or not len(frames):
        return y
    c.text(PAD, y, "frames (evenly spaced)", TEXT, 16)
    y += 22
    k = min(THUMBS, len(frames))
    picks = np.unique(np.round(np.linspace(0, len(frames) - 1, k)).astype(np.int64))
    gap = 8
    box_w = (WIDTH - 2 * PAD - (len(picks) - 1) * gap) // len(picks)
    fh, fw = frames.shape[1:3]
    scale = min(box_w / fw, THUMB_MAX_H / fh)
    tw, th = max(1, round(fw * scale)), max(1, round(fh * scale))
    for j, i in enumerate(picks):
        x = PAD + j * (box_w + gap) + (box_w - tw) // 2
        c.image(x, y, area_resize(np.asarray(frames[i]), tw, th))
        out.thumbs.append((int(i), (x, y, tw, th)))
        c.frame(x - 1, y - 1, x + tw + 1, y + th + 1, AXIS)
        t_s = (int(run.t_ns[i]) - axis.t0) / 1e9
        c.text(x + tw / 2, y + th + 4, f"#{i}  {t_s:.2f} s", MUTED, 13, "center")
    return y + th + 26


def _timeline(c: Canvas, run: Run, axis: _TimeAxis, y: int, out: Rendered) -> int:
    c.text(LEFT, y, "actions: held (bars), presses (dark ticks), releases (gray ticks)"
           + ("; axes: value per frame (scaled to +-the largest)" if run.axis_names else ""), TEXT, 16)
    y += 22
    if not run.actions and not run.axis_names:
        c.text(LEFT, y, "no actions recorded", MUTED, 14)
        return y + 24
    top = y
    for a, name in enumerate(run.actions):
        color = PALETTE[a % len(PALETTE)]
        c.rect(LEFT, y, WIDTH - RIGHT, y + LANE_H, (246, 246, 248))
        c.text(LEFT - 8, y + 3, name, TEXT, 15, "right")
        start, end = held_intervals(run, a)
        c.spans(axis.clip(axis.x(start)), axis.clip(axis.x(end)), y + 3, y + LANE_H - 3, _lighten(color))
        out.lanes.append((name, (LEFT, y, WIDTH - RIGHT - LEFT, LANE_H)))
        out.bar_colors.append(_lighten(color))
        mine = run.event_action == a
        c.vlines(axis.inside(run.event_t[mine & (run.event_value == 1)]), y, y + LANE_H, color)
        c.vlines(axis.inside(run.event_t[mine & (run.event_value == 0)]), y + LANE_H // 2, y + LANE_H, MUTED)
        y += LANE_H + LANE_GAP
    if len(run.takeover_spans):  # who had control: the spans the person took over, in their own lane
        c.rect(LEFT, y, WIDTH - RIGHT, y + LANE_H, (246, 246, 248))
        c.text(LEFT - 8, y + 3, "person", TEXT, 15, "right")
        c.spans(axis.clip(axis.x(run.takeover_spans[:, 0])), axis.clip(axis.x(run.takeover_spans[:, 1])),
                y + 3, y + LANE_H - 3, TAKEOVER)
        out.lanes.append(("person", (LEFT, y, WIDTH - RIGHT - LEFT, LANE_H)))
        out.bar_colors.append(TAKEOVER)
        y += LANE_H + LANE_GAP
    for k, name in enumerate(run.axis_names):  # an axis: its value over time about a centre line
        y = _axis_lane(c, run, axis, k, name, y, out)
    c.frame(LEFT, top - 1, WIDTH - RIGHT, y - LANE_GAP + 1, AXIS)
    return axis.draw(c, y - LANE_GAP + 1)


def _axis_lane(c: Canvas, run: Run, axis: _TimeAxis, k: int, name: str, y: int, out: Rendered) -> int:
    """One axis' lane, twice an action lane high: the values as a line, scaled to the largest |value| (its
    label says which), zero at the middle."""
    h = 2 * LANE_H
    color = PALETTE[(len(run.actions) + k) % len(PALETTE)]
    c.rect(LEFT, y, WIDTH - RIGHT, y + h, (246, 246, 248))
    v = run.axis_values[:, k].astype(np.float64) if len(run.axis_values) else np.zeros(0)
    peak = float(np.abs(v).max()) if len(v) else 0.0
    c.text(LEFT - 8, y + 3, name, TEXT, 15, "right")
    c.text(LEFT - 8, y + LANE_H + 1, f"+-{peak:.3g}", MUTED, 12, "right")
    mid = y + h / 2
    c.rect(LEFT, mid, WIDTH - RIGHT, mid + 1, _lighten(AXIS))
    if len(v) and peak > 0:
        c.polyline(axis.x(run.held_t), mid - v / peak * (h / 2 - 3), color, (LEFT, y, WIDTH - RIGHT, y + h))
    out.lanes.append((name, (LEFT, y, WIDTH - RIGHT - LEFT, h)))
    out.bar_colors.append(color)
    return y + h + LANE_GAP


def _gap_marks(c: Canvas, axis: _TimeAxis, pace: Pacing, top: int) -> None:
    c.vlines(axis.x(pace.gap_t), top + 20, top + 28, GAP_RED)


def _rate(c: Canvas, run: Run, axis: _TimeAxis, pace: Pacing, y: int, out: Rendered) -> int:
    finite = pace.rate_hz[np.isfinite(pace.rate_hz)]
    # Up to 1.5x the target: the successor of a late frame comes early, and such spikes are clipped to
    # the frame rather than squashing the normal rate into a line.
    if run.period_ns:
        hi = nice_ceil(1.5 * run.fps)
    else:
        hi = nice_ceil(float(np.percentile(finite, 99)) * 1.2) if len(finite) else 1.0
    note = f"target {run.fps:.2f} Hz (dashed); red marks: gaps" if run.period_ns else "red marks: gaps"
    ymap = _panel(c, y, PANEL_H, "instantaneous rate, 1 / (t[i] - t[i-1])", 0.0, hi, "Hz", note)
    if run.period_ns:
        c.hline(LEFT, WIDTH - RIGHT, float(ymap(np.array(run.fps))), TARGET_GREEN, dash=6)
    clip = (LEFT + 1, y + 21, WIDTH - RIGHT - 1, y + 19 + PANEL_H)
    c.polyline(axis.x(run.t_ns[1:]), ymap(np.minimum(pace.rate_hz[1:], hi)), LINE_BLUE, clip)
    _gap_marks(c, axis, pace, y)
    out.panels["rate"], out.panel_ink["rate"] = _plot_area(y, PANEL_H), LINE_BLUE
    return axis.draw(c, y + 20 + PANEL_H)


def _pacing(c: Canvas, run: Run, axis: _TimeAxis, pace: Pacing, y: int, out: Rendered) -> int:
    err_ms = pace.error_ns / 1e6
    finite = err_ms[np.isfinite(err_ms)]  # lateness: >= 0 by the choice of s0 (engine.report.data)
    # The range follows the bulk (p99.9), so ordinary jitter is visible; larger errors are clipped to
    # the frame and their maximum is printed.
    r = nice_ceil(max(float(np.percentile(finite, 99.9)) * 1.3, 0.02)) if len(finite) else 1.0
    worst = f"max {finite.max():.3f} ms; " if len(finite) else ""
    ymap = _panel(c, y, PANEL_H, "pacing error (lateness), t[i] - (s0 + slot[i] / fps), s0: no sample early",
                  0.0, r, "ms", f"{worst}red marks: gaps")
    clip = (LEFT + 1, y + 21, WIDTH - RIGHT - 1, y + 19 + PANEL_H)
    c.polyline(axis.x(run.t_ns), ymap(err_ms), LINE_BLUE, clip)
    _gap_marks(c, axis, pace, y)
    out.panels["pacing"], out.panel_ink["pacing"] = _plot_area(y, PANEL_H), LINE_BLUE
    return axis.draw(c, y + 20 + PANEL_H)


def _invoke(c: Canvas, run: Run, axis: _TimeAxis, y: int, out: Rendered) -> int:
    inv = run.play["invoke_ns"] / 1e6
    p50, p99 = (float(np.percentile(inv, q)) for q in (50, 99))
    hi = nice_ceil(max(p99 * 1.5, 0.01))  # a stall above this is clipped to the frame; its max is printed
    ymap = _panel(c, y, PANEL_H, "invoke time per decision", 0.0, hi, "ms",
                  f"p50 {p50:.3f} ms (dashed), p99 {p99:.3f} ms, max {inv.max():.3f} ms")
    c.hline(LEFT, WIDTH - RIGHT, float(ymap(np.array(p50))), TARGET_GREEN, dash=6)
    clip = (LEFT + 1, y + 21, WIDTH - RIGHT - 1, y + 19 + PANEL_H)
    c.polyline(axis.x(run.t_ns), ymap(inv), LINE_BLUE, clip)
    out.panels["invoke"], out.panel_ink["invoke"] = _plot_area(y, PANEL_H), LINE_BLUE
    return axis.draw(c, y + 20 + PANEL_H)


def _histogram(c: Canvas, x0: int, x1: int, y: int, title: str, values_ns: np.ndarray) -> Rect:
    """Counts of values in 40 bins from 0 (or the minimum, if negative) to just past the p99.9; returns
    the area inside its frame."""
    v = values_ns.astype(np.float64) / 1e6
    p50, p99 = float(np.percentile(v, 50)), float(np.percentile(v, 99))
    micro = p99 < 1.0  # label in µs when everything is under a millisecond
    scale, unit = (1e3, "µs") if micro else (1.0, "ms")
    lo = min(0.0, float(v.min()))
    hi = max(float(np.percentile(v, 99.9)) * 1.1, lo + 1e-3)
    bins = 40
    counts, _ = np.histogram(v, bins=bins, range=(lo, hi))  # values past hi are counted as "beyond"
    beyond = int(np.sum(v > hi))
    digits = 0 if micro else 2
    c.text(x0, y, title, TEXT, 16)
    c.text(x1, y + 2, f"p50 {p50 * scale:.{digits}f} {unit}, p99 {p99 * scale:.{digits}f} {unit}"
           + (f", {beyond} beyond" if beyond else ""), MUTED, 13, "right")
    top, bottom = y + 20, y + 20 + HIST_H
    c.frame(x0, top, x1, bottom, AXIS)
    peak = max(1, int(counts.max()))
    width = (x1 - x0 - 2) / bins
    for i, n in enumerate(counts):
        if n:
            # The tallest bar stops below the "tallest bar" label (top-right corner), never under it.
            h = n / peak * (HIST_H - HIST_LABEL_ROOM)
            c.rect(x0 + 2 + i * width, bottom - 1 - h, x0 + 1 + (i + 1) * width, bottom - 1, BAR_BLUE)

    def xmap(val: float) -> float:
        return x0 + 1 + (val - lo) / (hi - lo) * (x1 - x0 - 2)

    c.vline(xmap(p50), top, bottom, TARGET_GREEN)
    c.vline(min(xmap(p99), x1 - 2), top, bottom, P99_ORANGE)
    c.text(x1 - 6, top + 4, f"tallest bar: {peak} of {len(v)}", MUTED, 13, "right")  # over the p50/p99 lines
    ticks = nice_ticks(lo * scale, hi * scale, 5)
    step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    for t in ticks:
        x = xmap(t / scale)
        if x0 <= x <= x1:
            c.vline(x, bottom, bottom + 4, AXIS)
            c.text(x, bottom + 5, fmt_tick(float(t), step), MUTED, 13, "center")
    c.text(x1, bottom + 20, f"{unit} (green p50, orange p99)", MUTED, 13, "right")
    return x0 + 1, top + 1, x1 - x0 - 2, HIST_H - 2


def render(run: Run, pace: Pacing) -> Rendered:
    """The report image (WIDTH wide, as tall as its panels) and its layout."""
    c = Canvas(WIDTH, 4000)  # cropped to the content at the end
    out = Rendered(c.pixels)
    axis = _TimeAxis(run)
    y = _header(c, run, pace, PAD)
    y = _strip(c, run, axis, y, out) + 6
    y = _timeline(c, run, axis, y, out) + 6
    y = _rate(c, run, axis, pace, y, out) + 6
    y = _pacing(c, run, axis, pace, y, out) + 6
    if run.play and len(run.t_ns):
        y = _invoke(c, run, axis, y, out) + 6
        lat = run.play["t_sent_ns"] - run.play["t_capture_ns"]
        mid = WIDTH // 2
        out.panels["latency"] = _histogram(c, LEFT, mid - 30, y, "capture -> keys sent", lat)
        out.panels["latency minus invoke"] = _histogram(c, mid + 30, WIDTH - RIGHT, y, "capture -> keys minus invoke",
                                                        lat - run.play["invoke_ns"])
        out.panel_ink["latency"] = out.panel_ink["latency minus invoke"] = BAR_BLUE
        y += HIST_H + 50
    out.image = c.pixels[: y + PAD].copy()
    return out


__all__ = ["WIDTH", "Rendered", "render"]
