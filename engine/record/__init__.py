"""Recording: a person playing, captured at an exact rate with per-frame action labels, into a session.

recorder.py runs one recording (capture stream, input listener, the writer loop); labeler.py turns
timestamped key events into per-frame labels; config.py holds what a recording takes (RecordConfig)
and checks it. The listeners themselves live in engine.actions.inputs, the storage in engine.session.
"""

from __future__ import annotations

from engine.record.config import DEFAULT_ACTIONS, DEFAULT_HOTKEYS, RecordConfig, auto_size
from engine.record.recorder import Recorder, RecordingStopped, RecordSummary

__all__ = ["DEFAULT_ACTIONS", "DEFAULT_HOTKEYS", "RecordConfig", "RecordSummary", "Recorder", "RecordingStopped",
           "auto_size"]
