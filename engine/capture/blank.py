"""Blank-frame guard: say at once when the captured frames stay one uniform value.

A minimised window, a Wayland-native window the X server cannot read, or a protected surface gives frames
that are all black (or all one colour). Recorded silently, that is an hour of useless training data; seen by
a playing model, a bot reacting to nothing. The guard watches every frame the recorder stores or the player
feeds and fires once per blank run: when the first second of capture is blank, or later when a blank run
lasts longer than a few seconds (a game's own fade to black or loading screen is shorter).

Cost: a strided sample of ~256 pixels per frame (two tiny reductions, a few microseconds; the recorder's
batches take one pair of reductions for all their frames); only a frame whose sample is uniform is checked
whole, so a normal game pays for the sample alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FIRST_S = 1.0  # a blank start is reported after this long
LATER_S = 3.0  # a blank run after the start is reported after this long
_SAMPLES = 256


def is_uniform(frame: np.ndarray) -> bool:
    """Whether every value in the frame is the same (all channels of all pixels)."""
    flat = frame.reshape(-1)
    step = max(1, flat.size // _SAMPLES) | 1  # odd, so an RGB frame samples every channel
    sample = flat[::step]
    if sample.min() != sample.max():
        return False
    return bool(flat.min() == flat.max())


def uniform_candidates(frames: np.ndarray) -> np.ndarray:
    """(k,) bool: which of k frames (k, ...) may be uniform, by the same strided sample as is_uniform (two
    reductions for the whole batch); a False is certain, a True needs is_uniform."""
    flat = frames.reshape(len(frames), -1)
    step = max(1, flat.shape[1] // _SAMPLES) | 1
    sample = flat[:, ::step]
    return np.asarray(sample.min(axis=1) == sample.max(axis=1))


def blank_message(value: int, seconds: float, what: str) -> str:
    """One line: what was seen, the likely causes, what to do."""
    return (
        f"{what}: the captured frames have been one uniform value ({value}) for {seconds:.1f} s; the window is "
        "likely minimised or drawing nothing, a protected surface, or a Wayland-native window the X server "
        "cannot read: restore the window, run the game under XWayland (e.g. SDL_VIDEODRIVER=x11), or capture "
        "--region/--monitor instead"
    )


@dataclass
class BlankGuard:
    """Feed it every frame with its index and capture time; it returns a message the moment a blank run
    becomes reportable (once per run), and keeps the count and spans for the summary and meta.json."""

    fps: float
    what: str = "engine"
    first_s: float = FIRST_S
    later_s: float = LATER_S
    blank_frames: int = 0  # frames inside reported runs
    spans: list[list[int]] = field(default_factory=list)  # [first, last] frame index of each reported run
    _run_start: int = -1  # index of the first frame of the current blank run, -1 when not in one
    _run_t0: int = 0
    _reported: bool = False
    _first_index: int = -1

    def feed(self, frame: np.ndarray, index: int, t_ns: int) -> str | None:
        if self._first_index < 0:
            self._first_index = index
        if not is_uniform(frame):
            self._run_start = -1
            return None
        if self._run_start < 0:
            self._run_start, self._run_t0, self._reported = index, t_ns, False
        if self._reported:
            self.spans[-1][1] = index
            self.blank_frames += 1
            return None
        at_start = self._run_start == self._first_index
        # Frames, not only time: a 1 s run at 30 fps is 30 frames even if timestamps jitter.
        limit = self.first_s if at_start else self.later_s
        seconds = max((t_ns - self._run_t0) / 1e9, (index - self._run_start + 1) / self.fps)
        if seconds < limit:
            return None
        self._reported = True
        self.spans.append([self._run_start, index])
        self.blank_frames += index - self._run_start + 1
        return blank_message(int(frame.reshape(-1)[0]), seconds, self.what)

    def feed_many(self, frames: np.ndarray, first: int, t_ns: np.ndarray) -> list[str]:
        """feed() for consecutive frames (k, ...) with indices first.. and capture times t_ns (k,): the messages
        that became due. The recorder's batch: a batch with no uniform frame (a game) costs two reductions,
        not two per frame."""
        k = len(frames)
        if k == 0:
            return []
        if self._first_index < 0:
            self._first_index = first
        maybe = uniform_candidates(frames)
        if not maybe.any():
            self._run_start = -1
            return []
        out = []
        for i in range(k):  # some frame may be blank: frame by frame, as feed() does
            if not maybe[i]:
                self._run_start = -1
                continue
            message = self.feed(frames[i], first + i, int(t_ns[i]))
            if message:
                out.append(message)
        return out

    def summary(self) -> str | None:
        """One line for the end-of-run summary, or None when no blank run was reported."""
        if not self.spans:
            return None
        spans = ", ".join(f"{a}-{b}" for a, b in self.spans[:5]) + (" ..." if len(self.spans) > 5 else "")
        return f"blank frames: {self.blank_frames} (one uniform value; frames {spans})"


__all__ = ["FIRST_S", "LATER_S", "BlankGuard", "blank_message", "is_uniform", "uniform_candidates"]
