"""engine-report: one PNG (and a self-contained HTML page around it) describing a session or a play log.

The image (``render.render``): a header with the key numbers; for a session, a strip of evenly spaced
frame thumbnails; the action timeline (one lane per action, held intervals as bars, presses and releases
as ticks; a session's axes, mouse motion or pad sticks, as a line per axis); the instantaneous rate and
the pacing error (lateness against the ideal schedule, ``data.pacing``) over time, gaps (missed schedule
slots) marked in red; for a play log also invoke time over time and histograms of capture -> keys latency
with and without invoke. The HTML page embeds the PNG as a data URI and lists the numbers
(``data.summary``) as text. No plotting library: NumPy draws, pygame.font writes the labels,
``canvas.encode_png`` writes the file.

Outputs are ``<name>.report.png`` and ``<name>.report.html`` where name is the session's directory
name or the play log's file name (suffix included), in ``out_dir`` (default: beside the input, i.e. the
session directory's parent or the log's directory).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from engine.report.canvas import encode_png
from engine.report.data import Pacing, Run, load, pacing, summary
from engine.report.render import Rendered, render


@dataclass(frozen=True)
class Report:
    """Where a report was written and what it says."""

    png: Path
    html: Path
    width: int
    height: int
    rows: list[tuple[str, str]]  # the numbers, as (label, value)


def build_report(path: str | Path, out_dir: str | Path | None = None, *, fps: float | None = None,
                 data_dir: str | Path | None = None) -> Report:
    """Load ``path`` (session directory or name, or play log), render and write the PNG and HTML.

    Raises EngineError (one line) for an input that is missing, unreadable or not a session / play
    log, and for an output directory that cannot be written.
    """
    run = load(path, fps=fps, data=data_dir)
    pace = pacing(run)
    image = render(run, pace).image
    rows = summary(run, pace)
    png = encode_png(image)
    stem = run.path.name  # a play log keeps its suffix: run.npz and run.csv side by side get two reports
    out = Path(out_dir) if out_dir is not None else run.path.parent
    png_path, html_path = out / f"{stem}.report.png", out / f"{stem}.report.html"
    try:
        out.mkdir(parents=True, exist_ok=True)
        png_path.write_bytes(png)
        html_path.write_text(_html(run, rows, png, image.shape[1], image.shape[0]), encoding="utf-8")
    except OSError as e:
        raise EngineError(f"cannot write the report to {out}: {e.strerror}; pick a writable --out DIR") from e
    return Report(png_path, html_path, int(image.shape[1]), int(image.shape[0]), rows)


def _html(run: Run, rows: list[tuple[str, str]], png: bytes, width: int, height: int) -> str:
    title = html.escape(f"engine report: {run.kind} {run.name}")
    table = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    data = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #1e1e24; }}
img {{ max-width: 100%; height: auto; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; margin-top: 16px; }}
th, td {{ text-align: left; padding: 3px 12px 3px 0; border-bottom: 1px solid #eee; font-weight: normal; }}
th {{ color: #666; }}
td {{ font-variant-numeric: tabular-nums; }}
</style>
</head>
<body>
<h1>{title}</h1>
<img src="data:image/png;base64,{data}" width="{width}" height="{height}" alt="{title}">
<table>
{table}
</table>
</body>
</html>
"""


__all__ = ["Pacing", "Rendered", "Report", "Run", "build_report", "load", "pacing", "render", "summary"]
