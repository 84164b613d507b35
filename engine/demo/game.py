"""engine-demo: a small driving game in a real X11 window, the target of the end-to-end tests and demos.

Contract:
- One window titled exactly ``WINDOW_TITLE``, ``size`` pixels (320x240 by default), drawn through SDL's
  X11 driver (never "dummy": the recorder captures the real window and keys arrive as real X events).
  The game takes the keyboard focus when its window opens (``xdotool windowfocus --sync``, else SDL),
  as a window manager would give it; under a bare Xvfb nothing else would.
- A fixed tick (default 60 Hz) on absolute deadlines (``engine.Pacer``, sleeping without the GIL and
  without spinning). Each tick: poll the X key state (pygame's, i.e. what the X server delivered to the
  window), step the simulation (``engine.demo.sim``), draw, present, log. A tick more than a period
  late is skipped, never caught up; the simulation advances one step per presented frame, so a run is
  a pure function of the seed and the keys seen.
- Every frame shows its tick index as a block stamp in the top-left corner (``engine.demo.pattern``,
  144x16 px) and the arrow keys held (or tapped since the last frame) as lit boxes in the bottom-left
  corner (``indicator_rects``).
- ``autodrive``: the scripted driver (``engine.demo.driver``) plays through XTest (the engine's output
  layer, engine.actions.outputs) from inside this process. Before polling, the game waits up to
  ``SETTLE_NS`` for the X events of the keys the driver sent after the previous frame, so the run stays
  deterministic when the machine is loaded.
- ``assist_px``: the scripted driver plays a person who corrects a bot (engine-play --takeover): it sends
  nothing while the car is near the line, takes over when the car is more than ``assist_px`` window
  pixels off it, and lets go once it is back within ASSIST_DONE_PX with no steering key held. Its keys go
  through a second XInput2 master's XTest slave ("Person"), so every listener sees them come from another
  device than the engine's own XTest keys, as a person's keyboard would.
- ``mouse`` (issue 14): mouse-steered, as a mouse-look game is: the pointer is grabbed and hidden (SDL's
  relative mouse mode, which reads XInput2 raw motion) and warped back to the window centre every frame;
  the horizontal motion read since the previous frame moves the car sideways (engine.demo.sim.MOUSE_GAIN
  per count), so its lateral speed follows mouse dx. With ``autodrive`` the mouse driver
  (engine.demo.driver.MouseDriver) plays through XTest relative motion, each tick's motion spread over
  the tick by the output's motion thread, as a hand moves a mouse; the log records the dx the game read
  and applied (``dx``) beside what the driver asked for (``sent_dx``).
- R restarts the road from its start, the car in the middle of it (the simulation is made anew from the
  seed; the tick stamp and the log go on): what an environment's reset sequence presses.
- Stops on window close, Escape, ``duration_s``, SIGTERM or SIGINT; in every case the log is flushed
  and every key the driver holds is released (in ``finally`` and from the signal handler). A death
  that skips all of that (SIGKILL, or Xlib's exit on a lost connection) is covered by the output's watchdog
  child process that releases the keys still down (``engine.actions.watchdog``, the one play uses).

Over 400 lines: the window, the tick loop and the key polling share the SDL state; the simulation,
drawing pattern, driver and log are already apart.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from engine._pacer import Pacer, monotonic_ns, sleep_until_ns
from engine.actions.outputs import XTestOutput
from engine.demo import pattern
from engine.demo.driver import Driver, DriverKeys, MouseDriver
from engine.demo.log import LogWriter
from engine.demo.sim import ACTIONS, CAR_H, CAR_W, LEFT, RIGHT, UP, Sim
from engine.errors import EngineError

WINDOW_TITLE = "engine demo"
DEFAULT_SIZE = (320, 240)
DEFAULT_TICK_HZ = 60.0
MIN_SIZE = (160, 120)  # room for the frame stamp (144x16) and the key indicators
ASSIST_DONE_PX = 4.0  # assist: back this close to the line (320-px units), the person lets go
ASSIST_MASTER = "Person"
SETTLE_NS = 8_000_000  # autodrive: longest wait for the driver's own key events to arrive
_SETTLE_STEP_NS = 500_000

# Indicator geometry (bottom-left corner, laid out like the arrow keys), window pixels.
_IND_BOX, _IND_GAP, _IND_MARGIN = 14, 2, 6

_GRASS_A = (34, 118, 48)
_GRASS_B = (46, 140, 62)
_ROAD = (82, 82, 88)
_EDGE = (235, 235, 235)
_CENTRE = (240, 200, 40)
_CAR = (210, 40, 40)
_GLASS = (60, 70, 110)
IND_ON = (255, 220, 0)  # a lit key indicator (gray 205)
IND_OFF = (40, 40, 40)  # an unlit one (gray 40)
_IND_BORDER = (200, 200, 200)


def indicator_rects(size: tuple[int, int] = DEFAULT_SIZE) -> dict[str, tuple[int, int, int, int]]:
    """(x, y, w, h) of each key indicator box in a window of ``size``. The box (inside a 1-px border)
    is filled with IND_ON while the key is held or was tapped since the previous frame, else IND_OFF."""
    h = size[1]
    s, g, m = _IND_BOX, _IND_GAP, _IND_MARGIN
    bottom = h - m - s
    return {
        "left": (m, bottom, s, s),
        "up": (m + s + g, bottom - s - g, s, s),
        "right": (m + 2 * (s + g), bottom, s, s),
    }


@dataclass
class GameConfig:
    """Everything a run depends on. ``display`` "" means $DISPLAY."""

    seed: int = 0
    size: tuple[int, int] = DEFAULT_SIZE
    tick_hz: float = DEFAULT_TICK_HZ
    log_path: Path | None = None
    duration_s: float | None = None
    autodrive: bool = False
    gusts: bool = False  # crosswind gusts shove the car sideways now and then (engine.demo.sim.GUST_RATE)
    assist_px: float | None = None  # the driver as a person taking over past this error (see the module docs)
    display: str = ""
    position: tuple[int, int] | None = None  # window position; None lets SDL choose
    mouse: bool = False  # mouse-steered (see the module docs)

    def validate(self) -> None:
        """Raise EngineError (one line) for values the game cannot run with."""
        w, h = self.size
        if w < MIN_SIZE[0] or h < MIN_SIZE[1] or w > 4096 or h > 4096:
            raise EngineError(f"window size {w}x{h} is out of range; use {MIN_SIZE[0]}x{MIN_SIZE[1]} to 4096x4096")
        if not 1 <= self.tick_hz <= 1000:
            raise EngineError(f"tick rate {self.tick_hz} Hz is out of range; use 1 to 1000")
        if self.duration_s is not None and not self.duration_s > 0:
            raise EngineError(f"duration must be positive, got {self.duration_s}")
        if self.assist_px is not None and (self.autodrive or not self.assist_px > 0):
            raise EngineError("--assist takes a positive number of pixels, and not with --autodrive")
        if self.mouse and self.assist_px is not None:
            raise EngineError("--assist drives with keys; it does not combine with --mouse")
        if not 0 <= self.seed < 2**63:
            raise EngineError(f"seed must be in [0, 2**63), got {self.seed}")


@dataclass
class GameResult:
    frames: int = 0
    on_road_frames: int = 0
    late_ticks: int = 0  # ticks skipped because the game was over a period late
    settle_waits: int = 0  # autodrive frames that had to wait for the driver's key events
    settle_misses: int = 0  # ... and gave up after SETTLE_NS
    taps: int = 0
    assist_frames: int = 0  # assist: frames shown while the person had taken over
    assists: int = 0  # assist: takeovers
    reason: str = ""  # why the game stopped
    focus_fallback: str = ""  # why xdotool could not give the window focus ("" if it did)

    @property
    def on_road_fraction(self) -> float:
        return self.on_road_frames / self.frames if self.frames else 0.0


_KEYS: tuple[tuple[str, int], ...] = (("K_LEFT", LEFT), ("K_RIGHT", RIGHT), ("K_UP", UP))


def _prepare_sdl_env(cfg: GameConfig) -> None:
    if cfg.display:
        os.environ["DISPLAY"] = cfg.display
    # The real X11 driver, always: a "dummy" window would be invisible to the recorder and get no keys.
    os.environ["SDL_VIDEODRIVER"] = "x11"
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    # SDL 2 presents a window surface through an OpenGL texture by default, which under Xvfb is Mesa's
    # software llvmpipe (two extra threads, ~7x the present cost). The plain X11 framebuffer is an
    # XShmPutImage and an XSync: cheap, exact, and "flip returned" means the server has the pixels.
    os.environ["SDL_FRAMEBUFFER_ACCELERATION"] = "0"
    # SDL would turn SIGINT/SIGTERM into a quit event only once it polls; our own handlers also
    # release the driver's keys at once.
    os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
    if cfg.position is not None:
        os.environ["SDL_VIDEO_WINDOW_POS"] = f"{cfg.position[0]},{cfg.position[1]}"


def focus_window(window_id: int) -> str:
    """Give the X window the keyboard focus. Returns "" on success through xdotool (which waits until
    the server reports the focus changed), else the reason SDL's focus request was used instead."""
    exe = shutil.which("xdotool")
    reason = "xdotool is not installed"
    if exe is not None:
        try:
            subprocess.run([exe, "windowfocus", "--sync", str(window_id)], check=True, timeout=5,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            return ""
        except (subprocess.SubprocessError, OSError) as e:
            reason = f"xdotool windowfocus failed: {e}"
    from pygame._sdl2.video import Window

    Window.from_display_module().focus(input_only=True)
    return reason


def _own_window_id(pygame: Any) -> int:
    """The X id of our window, titled WINDOW_TITLE on return.

    Found by a title no other window has, through the engine's own window list: pygame's
    ``display.get_wm_info()`` is not used because pygame 2.6 builds its Wayland entries from
    uninitialised memory even on X11 and can crash.
    """
    from engine import _native

    probe = f"{WINDOW_TITLE} (starting, pid {os.getpid()}, {monotonic_ns()})"
    pygame.display.set_caption(probe)
    try:
        for _ in range(100):
            pygame.display.flip()  # SDL's X11 present ends in XSync: the title has reached the server
            for w in _native.x11_list_windows(os.environ["DISPLAY"]):
                if w["title"] == probe:
                    return int(w["id"])
            time.sleep(0.01)
        raise EngineError("the game window did not appear on the X display; is a compositor or WM hiding it?")
    finally:
        pygame.display.set_caption(WINDOW_TITLE)
        pygame.display.flip()


class Renderer:
    """Draws a Sim state onto the window surface (or any pygame Surface: engine.demo.models.rollout draws off
    screen) with pygame primitives (a few dozen calls a frame)."""

    def __init__(self, pygame: Any, screen: Any, sim: Sim) -> None:
        self.pg, self.screen, self.sim = pygame, screen, sim
        w, h = sim.width, sim.height
        self.rows = np.arange(0, h + 4, 4, dtype=np.float64)  # road outline sampled every 4 rows
        self.rows[-1] = h
        self.indicators = [(indicator_rects((w, h))[name], bit) for name, bit in
                           (("left", LEFT), ("up", UP), ("right", RIGHT))]
        self.car_size = (round(CAR_W * w), round(CAR_H * h))

    def draw(self, frame: int, lit: int) -> None:
        pg, scr, sim = self.pg, self.screen, self.sim
        w, h = sim.width, sim.height
        scr.fill(_GRASS_A)
        # Grass bands anchored to the road distance: they scroll with the car, so speed is visible.
        band = 0.1
        k = int(sim.u // band)
        while True:
            y_bottom = h - (k * band - sim.u) * h
            if y_bottom < 0:
                break
            if k % 2:
                top = h - ((k + 1) * band - sim.u) * h
                pg.draw.rect(scr, _GRASS_B, (0, round(top), w, round(y_bottom) - round(top)))
            k += 1
        u = sim.row_distance(self.rows)
        cx = sim.road.centres(u) * w
        half = sim.half_width_px
        left = list(zip((cx - half).tolist(), self.rows.tolist(), strict=True))
        right = list(zip((cx + half).tolist(), self.rows.tolist(), strict=True))
        pg.draw.polygon(scr, _ROAD, left + right[::-1])
        pg.draw.lines(scr, _EDGE, False, left, 2)
        pg.draw.lines(scr, _EDGE, False, right, 2)
        # Centre line: dashes 0.08 screen heights long, anchored to the road; one polyline per dash.
        # (Plain Python: on 61 points NumPy's per-call overhead costs more than the loop.)
        dash: list[tuple[float, float]] = []
        for x, y, d in zip(cx.tolist(), self.rows.tolist(), u.tolist(), strict=True):
            if int(d // 0.08) % 2 == 0:
                dash.append((x, y))
            elif dash:
                if len(dash) > 1:
                    pg.draw.lines(scr, _CENTRE, False, dash, 2)
                dash = []
        if len(dash) > 1:
            pg.draw.lines(scr, _CENTRE, False, dash, 2)
        cw, ch = self.car_size
        car = pg.Rect(0, 0, cw, ch)
        car.center = (round(sim.car_x), round(sim.car_y))
        pg.draw.rect(scr, _CAR, car)
        pg.draw.rect(scr, _GLASS, (car.x + 2, car.y + 4, cw - 4, ch // 4))
        for (x, y, bw, bh), bit in self.indicators:
            pg.draw.rect(scr, _IND_BORDER, (x - 1, y - 1, bw + 2, bh + 2))
            pg.draw.rect(scr, IND_ON if lit & bit else IND_OFF, (x, y, bw, bh))
        scr.fill((0, 0, 0), (0, 0, pattern.WIDTH, pattern.HEIGHT))
        for rect in pattern.white_blocks(frame % pattern.MODULUS):
            scr.fill((255, 255, 255), rect)


class _Keyboard:
    """The game's view of the keyboard: pygame's key state after pumping the X events."""

    def __init__(self, pygame: Any) -> None:
        self.pg = pygame
        self.codes = [(getattr(pygame, name), bit) for name, bit in _KEYS]
        self.quit_reason = ""
        self.restart = False  # R went down: the game loop restarts the road and clears this

    def poll(self) -> tuple[int, int]:
        """Pump events; returns (held mask, mask of keys that went down during this pump)."""
        pg = self.pg
        pressed = 0
        for ev in pg.event.get():
            if ev.type == pg.QUIT:
                self.quit_reason = "window closed"
            elif ev.type == pg.KEYDOWN:
                if ev.key == pg.K_ESCAPE:
                    self.quit_reason = "escape"
                elif ev.key == pg.K_r:
                    self.restart = True
                for code, bit in self.codes:
                    if ev.key == code:
                        pressed |= bit
        state = pg.key.get_pressed()
        held = sum(bit for code, bit in self.codes if state[code])
        return held, pressed


def run(cfg: GameConfig, on_ready: Callable[[int, str], None] | None = None) -> GameResult:
    """Run the game until it is stopped (see the module contract). ``on_ready(window_id, focus_note)``
    is called once the window is mapped, drawn and focused, before the first tick.

    Raises EngineError (one line) for a bad config, an unwritable log or an unusable display.
    """
    cfg.validate()
    _prepare_sdl_env(cfg)
    if not os.environ.get("DISPLAY"):
        raise EngineError("no X display: DISPLAY is not set; run the demo under Xvfb "
                          "(e.g. xvfb-run -s '-screen 0 1280x720x24' engine-demo --autodrive)")
    result = GameResult()
    sim = Sim(cfg.seed, cfg.size, cfg.tick_hz, gusts=cfg.gusts)
    log: LogWriter | None = None
    if cfg.log_path is not None:
        meta = {"seed": cfg.seed, "tick_hz": cfg.tick_hz, "size": f"{cfg.size[0]}x{cfg.size[1]}",
                "autodrive": int(cfg.autodrive), "gusts": int(cfg.gusts), "mouse": int(cfg.mouse)}
        try:
            log = LogWriter(cfg.log_path, meta, flush_every=max(1, round(cfg.tick_hz / 4)))
        except OSError as e:
            raise EngineError(f"cannot write the log {cfg.log_path}: {e.strerror}; pick a writable path") from e

    keys: DriverKeys | None = None
    stop_reason: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop_reason.append(signal.Signals(signum).name)
        if keys is not None:
            keys.stop()  # release at once; the loop ends at its next check

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    import pygame

    try:
        try:
            pygame.display.init()
            screen = pygame.display.set_mode(cfg.size)
        except pygame.error as e:
            raise EngineError(f"cannot open a window on X display {os.environ['DISPLAY']!r} ({e}); "
                              "is the X server running? try running under Xvfb") from e
        pygame.event.set_blocked(None)
        pygame.event.set_allowed([pygame.QUIT, pygame.KEYDOWN, pygame.KEYUP, *([pygame.MOUSEMOTION] * cfg.mouse)])
        renderer = Renderer(pygame, screen, sim)
        keyboard = _Keyboard(pygame)
        renderer.draw(0, 0)
        window_id = _own_window_id(pygame)
        keyboard.poll()
        result.focus_fallback = focus_window(window_id)
        driver: Driver | None = None
        mouse_driver: MouseDriver | None = None
        centre = (cfg.size[0] // 2, cfg.size[1] // 2)
        if cfg.mouse:  # grabbed and hidden: SDL's relative mode (XI2 raw motion), as mouse-look games do
            pygame.event.set_grab(True)
            pygame.mouse.set_visible(False)
            pygame.mouse.set_pos(centre)
        if cfg.autodrive and cfg.mouse:
            keys = DriverKeys(XTestOutput(list(ACTIONS), os.environ["DISPLAY"], axes=["mouse_dx"], fps=cfg.tick_hz))
            mouse_driver = MouseDriver(cfg.seed)
        elif cfg.autodrive:
            keys = DriverKeys(XTestOutput(list(ACTIONS), os.environ["DISPLAY"]))  # with its crash watchdog
            driver = Driver(cfg.seed)
        assist: Driver | None = None
        assisting = False
        if cfg.assist_px is not None:  # after focus_window: the Person master copies the core focus
            keys = DriverKeys(XTestOutput(list(ACTIONS), os.environ["DISPLAY"], watchdog=False, master=ASSIST_MASTER))
            assist = Driver(cfg.seed)
        keyboard.poll()  # drop whatever arrived before the game started (focus events, stray keys)
        pygame.mouse.get_rel()  # ... and the motion
        if on_ready is not None:
            on_ready(window_id, result.focus_fallback)

        period_ns = round(1e9 / cfg.tick_hz)
        pacer = Pacer(period_ns=period_ns, spin_ns=0)
        end_ns = None if cfg.duration_s is None else pacer.start_ns + round(cfg.duration_s * 1e9)
        expect_held, expect_tap = 0, 0
        while not stop_reason and not keyboard.quit_reason:
            tick = pacer.wait()
            result.late_ticks += tick.skipped
            if end_ns is not None and tick.deadline_ns >= end_ns:
                result.reason = "duration"
                break
            held, pressed = keyboard.poll()
            if driver is not None and (held != expect_held or pressed & expect_tap != expect_tap):
                # The driver's events for this tick are late (loaded machine): wait a little for them.
                result.settle_waits += 1
                give_up = monotonic_ns() + SETTLE_NS
                while held != expect_held or pressed & expect_tap != expect_tap:
                    now = monotonic_ns()
                    if now >= give_up or stop_reason:
                        result.settle_misses += 1
                        break
                    sleep_until_ns(now + _SETTLE_STEP_NS, 0)
                    held, more = keyboard.poll()
                    pressed |= more
            if keyboard.restart:
                keyboard.restart = False
                sim = Sim(cfg.seed, cfg.size, cfg.tick_hz, gusts=cfg.gusts)
                renderer.sim = sim
            poll_ns = time.monotonic_ns()
            mouse_dx = 0
            if cfg.mouse:
                mouse_dx = int(pygame.mouse.get_rel()[0])
                pygame.mouse.set_pos(centre)  # back to the centre, as mouse-look games keep it
            sim.step(held, pressed, mouse_dx)
            renderer.draw(tick.index, held | pressed)
            pygame.display.flip()
            t_ns = time.monotonic_ns()
            on_road = sim.on_road
            result.frames += 1
            result.on_road_frames += on_road
            sent = tap = tap_ns = 0
            sent_dx = 0.0
            if mouse_driver is not None and keys is not None and not stop_reason:
                sent_dx = mouse_driver.decide(sim)
                keys.move(sent_dx)
            elif driver is not None and keys is not None and not stop_reason:
                decision = driver.decide(sim)
                tap_ns = keys.send(decision)
                sent, tap = decision.held, decision.tap if tap_ns else 0
                expect_held, expect_tap = sent, tap
            elif assist is not None and keys is not None and cfg.assist_px is not None and not stop_reason:
                decision = assist.decide(sim)  # every tick: its hysteresis state follows the car
                error = abs(sim.car_x - sim.road_x) * 320.0 / sim.width
                if not assisting and error > cfg.assist_px:
                    assisting = True
                    result.assists += 1
                elif assisting and error < ASSIST_DONE_PX and not decision.held & (LEFT | RIGHT):
                    assisting = False
                    keys.send(type(decision)(0))
                if assisting:
                    result.assist_frames += 1
                    tap_ns = keys.send(decision)
                    sent, tap = decision.held, decision.tap if tap_ns else 0
            if log is not None:
                log.write(tick.index, t_ns, held, pressed, sim.car_x, sim.road_x, on_road, sent, tap, tap_ns, poll_ns,
                          mouse_dx, sent_dx)
        result.reason = result.reason or (stop_reason[0] if stop_reason else keyboard.quit_reason)
        result.taps = driver.taps if driver is not None else 0
        return result
    finally:
        try:
            if keys is not None:
                keys.close()  # releases every key, then tells the watchdog whether that went through
        finally:
            if log is not None:
                log.close()
            pygame.display.quit()
            for s, h in old_handlers.items():
                signal.signal(s, h)


__all__ = [
    "DEFAULT_SIZE",
    "DEFAULT_TICK_HZ",
    "IND_OFF",
    "IND_ON",
    "MIN_SIZE",
    "WINDOW_TITLE",
    "GameConfig",
    "GameResult",
    "Renderer",
    "focus_window",
    "indicator_rects",
    "run",
]
