"""Input-to-photon latency of any window: press a key through XTest, time until its pixels change.

Contract of one probe (all instants on the engine's monotonic clock, int64 ns):

1. wait a random gap (``spacing``), so presses land at random phases of the game's frame clock; the
   probe region is watched meanwhile and a change there is counted as ``unstable`` (the region moves
   on its own, so a detection could be a coincidence);
2. grab the probe region once more: the *baseline*;
3. ``press_ns``: the clock just before the press is sent (XTest, flushed);
4. grab the probe region as fast as the X server answers (MIT-SHM round trips of a few µs plus the
   gray conversion); ``seen_ns`` is the capture instant (the clock just before the grab, as in the
   capture loop) of the first grab whose mean absolute gray difference from the baseline is at least
   ``threshold`` levels; ``prev_ns`` is the one of the grab before it, so the change reached the
   screen in (prev_ns, seen_ns + grab time] and ``seen_ns - prev_ns`` is the probe's resolution;
5. hold the key for another random gap (so the release, too, lands at a random phase rather than
   just after a frame), release it (``release_ns``) and poll the same way until the region is back
   within ``threshold`` of the baseline (``reverted_ns``).

latency = seen_ns - press_ns. A probe whose change is not seen within ``timeout`` s is a timeout
(``seen_ns`` -1); the key is released and the next probe goes on.

Only the probe region is grabbed, so a poll costs the same on a 4K screen as on a 14x14 box. A window
whose key indicators are known (``LatencyConfig.indicators``, by title; engine-latency gives the demo
game's, ``engine.demo.game.indicator_rects``) gets the key's indicator box as its default probe region,
which changes only with that key: the measurement there is exact up to one poll.

Keys: the key is sent through the engine's output layer (engine.actions.outputs.XTestOutput) and held only
between steps 3 and 5; :func:`measure` releases it on every exit path (``finally``, the actuator's
destructor, and the output's crash watchdog process if this one is killed).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import _native
from engine._pacer import monotonic_ns, sleep_until_ns
from engine.actions.names import parse_actions
from engine.actions.outputs import XTestOutput
from engine.capture import CaptureSource, NativeX11Source, open_source
from engine.errors import EngineError

QUIET_POLL_NS = 5_000_000  # how often the region is looked at during the random gap (cheap, no spinning)
Rect = tuple[int, int, int, int]
# Key indicator boxes of a window, from its size: {key: (x, y, w, h) inside the window}.
Indicators = Callable[[tuple[int, int]], Mapping[str, Rect]]


@dataclass
class LatencyConfig:
    """What to press and where to look. Give ``window`` (title or X id) or ``region`` (screen X,Y,W,H).

    probe_region: X,Y,W,H inside the window (or the region); None means the indicator box of ``key`` on a
    window listed in ``indicators`` (window title -> its boxes), else the whole window. threshold: mean
    absolute gray difference (0-255 levels) from the baseline that counts as a change. timeout: seconds
    per probe to wait for the change (and again for the revert). spacing: (min, max) seconds of the random
    gaps before a press and before its release.
    """

    key: str
    window: str | int | None = None
    region: Rect | None = None
    probe_region: Rect | None = None
    probes: int = 100
    threshold: float = 1.0
    timeout: float = 1.0
    spacing: tuple[float, float] = (0.05, 0.15)
    display: str = ""
    seed: int | None = None
    indicators: Mapping[str, Indicators] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise EngineError (one line) for values a measurement cannot run with; normalises ``key``."""
        if (self.window is None) == (self.region is None):
            raise EngineError("give a window (--window TITLE) or a screen region (--region X,Y,W,H), not both")
        self.key = parse_actions([self.key], what="key")[0]
        if self.probes <= 0:
            raise EngineError(f"--probes must be positive, got {self.probes}")
        if not 0 < self.threshold <= 255:
            raise EngineError(f"--threshold must be in (0, 255] gray levels, got {self.threshold:g}")
        if not self.timeout > 0:
            raise EngineError(f"--timeout must be positive, got {self.timeout:g}")
        lo, hi = self.spacing
        if not 0 <= lo <= hi:
            raise EngineError(f"spacing must be 0 <= MIN <= MAX seconds, got {lo:g},{hi:g}")
        for name, rect in (("--region", self.region), ("--probe-region", self.probe_region)):
            if rect is not None and (rect[2] <= 0 or rect[3] <= 0):
                raise EngineError(f"{name} {','.join(map(str, rect))} has no area; W and H must be positive")


@dataclass(frozen=True)
class Probe:
    """One press/release cycle; instants in monotonic ns, -1 where the event was not seen."""

    press_ns: int
    prev_ns: int  # capture instant of the last grab that still looked like the baseline
    seen_ns: int  # capture instant of the first changed grab (-1: timed out)
    diff: float  # mean abs gray difference of that grab from the baseline
    release_ns: int
    reverted_ns: int  # capture instant of the first grab back at the baseline after the release (-1: not seen)

    @property
    def detected(self) -> bool:
        return self.seen_ns >= 0

    @property
    def latency_ns(self) -> int:
        return self.seen_ns - self.press_ns if self.detected else -1

    @property
    def resolution_ns(self) -> int:
        return self.seen_ns - self.prev_ns if self.detected else -1

    @property
    def release_latency_ns(self) -> int:
        return self.reverted_ns - self.release_ns if self.reverted_ns >= 0 else -1


def _stats_ms(values_ns: list[int]) -> dict[str, float]:
    if not values_ns:
        return {}
    v = np.asarray(values_ns, np.float64) / 1e6
    return {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "min": float(v.min()),
            "max": float(v.max()), "mean": float(v.mean())}


@dataclass
class LatencyResult:
    """All probes of a run and where they looked."""

    key: str
    target: str  # what was probed, for people: 'window "engine demo" (0x200002)' or 'region 0,0,640,480'
    probe_rect: Rect  # absolute screen rectangle that was grabbed
    demo: bool  # the probe region is the key's indicator box (a window of LatencyConfig.indicators: the demo)
    threshold: float
    timeout: float
    capture: str  # capture backend/path, e.g. "x11/xshm"
    probes: list[Probe] = field(default_factory=list)
    polls: int = 0  # grabs taken while waiting for changes (not counting the quiet checks)
    unstable: int = 0  # gaps during which the probe region changed without a key press
    interrupted: bool = False

    @property
    def detected(self) -> list[Probe]:
        return [p for p in self.probes if p.detected]

    @property
    def timeouts(self) -> int:
        return sum(not p.detected for p in self.probes)

    def latency_ms(self) -> dict[str, float]:
        """p50/p99/min/max/mean of press -> first changed frame over detected probes ({} if none)."""
        return _stats_ms([p.latency_ns for p in self.detected])

    def release_ms(self) -> dict[str, float]:
        return _stats_ms([p.release_latency_ns for p in self.probes if p.reverted_ns >= 0])

    def resolution_ms(self) -> dict[str, float]:
        return _stats_ms([p.resolution_ns for p in self.detected])

    def warnings(self) -> list[str]:
        out = []
        if self.timeouts and self.detected:
            out.append(f"{self.timeouts} of {len(self.probes)} probes saw no change within {self.timeout:g} s "
                       "and are left out of the statistics")
        not_reverted = sum(p.detected and p.reverted_ns < 0 for p in self.probes)
        if not_reverted:
            out.append(f"{not_reverted} probes did not return to the baseline within {self.timeout:g} s of the "
                       "release")
        if self.unstable:
            out.append(f"the probe region changed {self.unstable} times with no key pressed: detections may be "
                       "coincidences; pick a --probe-region that only the key changes")
        return out

    def lines(self) -> list[str]:
        """The human summary: one line of numbers, then the details."""
        n, found = len(self.probes), len(self.detected)
        lat = self.latency_ms()
        if not n:
            return [f"input-to-photon {self.key} on {self.target}: no probe completed"]
        if not lat:
            return [f"input-to-photon {self.key} on {self.target}: no change seen in {n} probes"]
        rel, res = self.release_ms(), self.resolution_ms()
        out = [
            f"input-to-photon {self.key} on {self.target}: p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms "
            f"min {lat['min']:.2f} ms max {lat['max']:.2f} ms ({found} of {n} probes)",
            f"probe region {','.join(map(str, self.probe_rect))}{' (key indicator)' if self.demo else ''}, "
            f"threshold {self.threshold:g} levels, capture {self.capture}, resolution p50 {res['p50'] * 1e3:.0f} µs "
            f"max {res['max'] * 1e3:.0f} µs",
        ]
        if rel:
            out.append(f"release-to-photon p50 {rel['p50']:.2f} ms p99 {rel['p99']:.2f} ms")
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: settings, statistics (ms) and every probe (ns)."""
        return {
            "key": self.key, "target": self.target, "probe_rect": list(self.probe_rect), "demo": self.demo,
            "threshold": self.threshold, "timeout_s": self.timeout, "capture": self.capture,
            "probes": len(self.probes), "detected": len(self.detected), "timeouts": self.timeouts,
            "unstable": self.unstable, "polls": self.polls, "interrupted": self.interrupted,
            "latency_ms": self.latency_ms(), "release_ms": self.release_ms(), "resolution_ms": self.resolution_ms(),
            "samples": [{**asdict(p), "latency_ns": p.latency_ns} for p in self.probes],
            "warnings": self.warnings(),
        }

    def save_json(self, path: Path) -> None:
        try:
            path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        except OSError as e:
            raise EngineError(f"cannot write {path}: {e.strerror}; pick a writable --json path") from e


@dataclass(frozen=True)
class _Target:
    """The probed area, resolved: absolute probe rectangle and how to grab it."""

    description: str
    probe_rel: Rect  # relative to the window (or the region)
    window_id: int | None
    region: Rect | None  # the screen region, when no window
    demo: bool


def _resolve(cfg: LatencyConfig) -> _Target:
    if cfg.window is not None:
        with open_source(window=cfg.window, display=cfg.display) as whole:
            if not isinstance(whole, NativeX11Source):
                raise EngineError("following a window needs the native X11 grabber; pass --region X,Y,W,H")
            wid, size = whole.window_id, (whole.width, whole.height)
        titles = {int(w["id"]): str(w["title"]) for w in _native.x11_list_windows(cfg.display)}
        title = titles.get(wid, "")
        indicators = cfg.indicators.get(title)
        desc = f'window "{title}" ({wid:#x})'
        probe = cfg.probe_region
        if probe is None and indicators is not None:
            boxes = indicators(size)
            if cfg.key not in boxes:
                raise EngineError(f'window "{title}" shows no indicator for {cfg.key}; use --key '
                                  f"{'|'.join(boxes)} or give --probe-region X,Y,W,H")
            return _Target(desc, boxes[cfg.key], wid, None, True)
        return _Target(desc, _inside(probe, size, "window"), wid, None, False)
    assert cfg.region is not None
    x, y, w, h = cfg.region
    return _Target(f"region {x},{y},{w},{h}", _inside(cfg.probe_region, (w, h), "region"), None, (x, y, w, h),
                   False)


def _inside(probe: Rect | None, size: tuple[int, int], what: str) -> Rect:
    """The probe rectangle (default: all of ``size``), checked to lie inside it."""
    w, h = size
    if probe is None:
        return 0, 0, w, h
    px, py, pw, ph = probe
    if px < 0 or py < 0 or px + pw > w or py + ph > h:
        raise EngineError(f"probe region {px},{py},{pw},{ph} is outside the {what} ({w}x{h}); "
                          f"give X,Y,W,H relative to the {what} and inside it")
    return probe


def _open_probe(cfg: LatencyConfig, t: _Target) -> CaptureSource:
    if t.window_id is not None:
        # By id: the title was resolved once, and a second window with the same title cannot swap in.
        return open_source(window=t.window_id, region=t.probe_rel, display=cfg.display)
    assert t.region is not None
    x, y, _, _ = t.region
    px, py, pw, ph = t.probe_rel
    return open_source(region=(x + px, y + py, pw, ph), display=cfg.display)


class _Watcher:
    """Grabs the probe region and compares it with a baseline, in gray levels."""

    def __init__(self, source: CaptureSource) -> None:
        self.source = source
        self.w, self.h = source.width, source.height
        self.baseline = self.gray()

    def gray(self) -> np.ndarray:
        return _native.convert_resize(self.source.grab(), self.w, self.h, "gray")

    def diff(self, gray: np.ndarray) -> float:
        return float(np.abs(gray.astype(np.int16) - self.baseline).mean())

    def wait(self, changed: bool, threshold: float, deadline_ns: int) -> tuple[int, int, float, int]:
        """Poll as fast as the X server answers until the region differs from the baseline by at least
        ``threshold`` (changed=True) or by less (changed=False), or the deadline passes.

        Returns (capture instant of the first matching grab or -1, the instant of the grab before it,
        its difference, grabs taken)."""
        prev = monotonic_ns()
        polls = 0
        while True:
            t = monotonic_ns()
            d = self.diff(self.gray())
            polls += 1
            if (d >= threshold) == changed:
                return t, prev, d, polls
            if t >= deadline_ns:
                return -1, prev, d, polls
            prev = t


def measure(cfg: LatencyConfig, *, on_probe: Callable[[int, Probe], None] | None = None) -> LatencyResult:
    """Run ``cfg.probes`` probes (see the module contract) and return them all.

    Raises EngineError/ValueError/CaptureError (one line) for bad settings or an unusable display
    before any key is pressed, WindowLost if the window goes away meanwhile. A KeyboardInterrupt
    (Ctrl-C, or SIGTERM turned into it by the CLI) during the probes ends the run early: the probes
    completed so far are returned with ``interrupted`` set. The key is released on every way out.
    """
    cfg.validate()
    target = _resolve(cfg)
    source = _open_probe(cfg, target)
    try:
        output = XTestOutput([cfg.key], cfg.display)  # with its crash watchdog, as engine-play's keys
    except BaseException:
        source.close()
        raise
    rng = random.Random(cfg.seed)
    result = LatencyResult(key=cfg.key, target=target.description, probe_rect=source.rect, demo=target.demo,
                           threshold=cfg.threshold, timeout=cfg.timeout,
                           capture=f"{source.backend}/{source.path}")
    down, up = np.ones(1, np.uint8), np.zeros(1, np.uint8)
    timeout_ns = round(cfg.timeout * 1e9)
    try:
        if output.system_held()[0]:
            # Our press would change nothing and our release would let go of someone else's key.
            raise EngineError(f"{cfg.key} is already held down on the X server; release it and run again")
        watcher = _Watcher(source)
        for i in range(cfg.probes):
            result.unstable += _quiet_gap(watcher, cfg.threshold, round(rng.uniform(*cfg.spacing) * 1e9))
            watcher.baseline = watcher.gray()
            press_ns = monotonic_ns()
            output.apply(down)
            seen, prev, d, polls = watcher.wait(True, cfg.threshold, press_ns + timeout_ns)
            if seen >= 0:
                sleep_until_ns(monotonic_ns() + round(rng.uniform(*cfg.spacing) * 1e9), 0)
            release_ns = monotonic_ns()
            output.apply(up)
            reverted, _, _, more = watcher.wait(False, cfg.threshold, release_ns + timeout_ns)
            result.polls += polls + more
            probe = Probe(press_ns, prev if seen >= 0 else -1, seen, d, release_ns, reverted)
            result.probes.append(probe)
            if on_probe is not None:
                on_probe(i, probe)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        try:
            output.close()  # XSync: the release has reached the server before we go on; ends the watchdog
        finally:
            source.close()
    return result


def _quiet_gap(watcher: _Watcher, threshold: float, gap_ns: int) -> int:
    """Sleep for gap_ns, looking at the region every QUIET_POLL_NS; returns 1 if it changed meanwhile
    (by ``threshold`` from its look at the start of the gap), else 0."""
    end = monotonic_ns() + gap_ns
    watcher.baseline = watcher.gray()
    moved = 0
    while True:
        now = monotonic_ns()
        if now >= end:
            return moved
        sleep_until_ns(min(end, now + QUIET_POLL_NS), 0)
        if not moved and watcher.diff(watcher.gray()) >= threshold:
            moved = 1


__all__ = ["LatencyConfig", "LatencyResult", "Probe", "measure"]
