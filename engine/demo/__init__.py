"""The bundled demo game (``engine-demo``): a deterministic driving game in a real X11 window, its
scripted XTest driver, the frame-number stamp it draws, and its per-frame log.

Importing this package does not import pygame; only :func:`engine.demo.game.run` does.
"""

from __future__ import annotations

from engine.demo.game import WINDOW_TITLE, GameConfig, GameResult, indicator_rects, run
from engine.demo.log import LOG_DTYPE, load_log
from engine.demo.pattern import decode, draw, encode
from engine.demo.sim import ACTIONS

__all__ = [
    "ACTIONS",
    "LOG_DTYPE",
    "WINDOW_TITLE",
    "GameConfig",
    "GameResult",
    "decode",
    "draw",
    "encode",
    "indicator_rects",
    "load_log",
    "run",
]
