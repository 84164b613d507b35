"""engine.env: a real-time Gymnasium environment over any game window (extra ``[env]``: gymnasium).

:class:`GameEnv` observes a window, region or monitor through engine-play's capture (native pacer, latest-N
ring), sends MultiBinary key actions through engine-play's outputs (XTest with its crash watchdog by
default), and steps on the capture clock: ``step(a)`` sends ``a`` at once and returns the first frame
captured after it (see engine.env.realtime for the timing contract and what ``info`` holds).
:class:`TFLitePolicy` runs a ``.tflite`` model on its observations exactly as engine-play does;
engine.env.demo has reward and episode-end examples for the demo game. Also registered with Gymnasium as
``engine/Game-v0`` (``gymnasium.make("engine/Game-v0", actions=[...], window=...)``).
"""

from __future__ import annotations

try:
    import gymnasium
except ImportError:  # pragma: no cover - the extra is missing
    raise ImportError("engine.env needs gymnasium: pip install 'engine[env]' (or 'gymnasium>=1.0')") from None

from engine.env.demo import DEMO_RESET, demo_done, demo_reward, on_road
from engine.env.policy import TFLitePolicy
from engine.env.realtime import GameEnv
from engine.env.spec import FrameSpec

ENV_ID = "engine/Game-v0"

if ENV_ID not in gymnasium.registry:
    # Live pixels differ from run to run: nondeterministic, so env checkers do not expect equal observations.
    gymnasium.register(id=ENV_ID, entry_point="engine.env.realtime:GameEnv", nondeterministic=True)

__all__ = ["DEMO_RESET", "ENV_ID", "FrameSpec", "GameEnv", "TFLitePolicy", "demo_done", "demo_reward", "on_road"]
