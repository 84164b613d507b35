"""Human-gated DAgger on the demo game, measured (issue 15): a model cloned from calm recordings of the scripted
driver plays unseen roads in a crosswind under ``engine-play --takeover --record`` while the scripted driver,
as a person on a second XInput2 master (``engine-demo --assist``), takes over when the car is far off the
line; the takeover sessions are aggregated with the calm ones (engine-dataset --interventions) and the model
retrained (engine-train). On-road is scored by the game's own log on held-out roads, used neither for the
calm recordings nor for the corrections, before and after.

The loop of ``python -m engine.demo.dagger`` (the README's numbers, ~20 min), made small: one calm recording,
one round of corrections, 40x30 frames, short drives, few epochs. Needs TensorFlow; marked slow. Run it alone with
    .venv/bin/python -m pytest tests/test_dagger.py -s
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from engine.demo.dagger import Sizes, run

# One calm recording of road 1, one round of corrections on road 3, scored for 14 s on road 11: its crosswind
# shoves the car off the line at about 2 s and again at about 11 s (the full-size calm model of the README
# left it at 11 s), and a calm-only model that leaves it stays off for seconds. 40x30 frames (the 320x240
# window area-resized by 8: the road and the car still show), 12 epochs at batch 32 and learning rate 0.003:
# with the defaults (batch 64, 0.001) the loss sits on a plateau for 5 to 8 epochs and one retrained model
# of three never left it in 8 epochs (it pressed nothing and drove 17.6%).
# Measured, training seeds 0, 1, 2 (python -m engine.demo.dagger --seconds 15 --calm-seeds 1 --round-seeds 3
# --eval-seeds 11 --eval-seconds 14 --rounds 1 --epochs 12 --batch-size 32 --learning-rate 0.003 --size 40x30
# --seed S): on the road 71.4%, 24.3%, 52.8% before and 95.6%, 92.5%, 95.8% after (gains of 24, 68 and 43
# points; two 10-epoch runs: 31 and 52), the person in control 36-42% of the round; 93-111 s each
# (2-core AMD EPYC shared with other jobs, load 3-7). The margin is half the smallest gain; the floor after
# the round is under the lowest after (88.6% in every run whose training left the plateau).
#
# One training at this size is a lottery: on one recorded loop's data, training seeds 1-3 drove road 11 at 94-95%
# and seed 0 at 66% (48% at 24 epochs); of 24 (data, seed) pairs from 9 loops, 3 drove 8-66% (the car shoved off at
# 1 s and kept off, the model pressing the wrong key or none), which failed this test in 4 of 15 runs (2026-12-07,
# CI included). So every model of the test, round 0's too, is the best of four trainings (seeds 0-3, trained side by
# side: 27-28 s for the four on a 2-vCPU Intel Xeon VM), as DAgger returns the best policy on validation. The
# validation drives were real 4 s drives of road 8 first, and they could not tell good models from bad: a local
# .ci/run and CI (2026-12-07/08) failed on round-1 models that validated 81.2% and 85.0% there and drove road 11
# 54.0% and 39.4%. Now they are simulated (engine.demo.models.rollout: the game's own renderer and simulation, the
# engine's convert+resize, engine-play's model code; tests/test_record_demo.py checks its frames against the
# recorded window): 14 s on each of roads 5-10, used for nothing else, about 1 s a model. Round-1 candidates of six
# loops (2026-12-08, five under one busy loop) validated 23-97% (12 of 24 under 95%), calm-only ones 32-66%; every
# kept round-1 model validated 90.7-97.0% and drove road 11 91.6-95.4%, after 46.8-71.3% before.
SIZES = Sizes(seconds=15.0, calm_seeds=(1,), round_seeds=(3,), eval_seeds=(11,), eval_seconds=14.0, rounds=1,
              epochs=12, batch_size=32, learning_rate=0.003, frame_size=(40, 30), candidates=4)
MARGIN = 0.12
AFTER = 0.80

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("tensorflow", "matplotlib")),
                       reason="engine-train needs TensorFlow and matplotlib: pip install 'engine[train]'"),
]


def test_one_round_of_corrections_keeps_the_car_on_held_out_roads(xvfb, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   record_property) -> None:
    lines: list[str] = []
    times: dict[str, float] = {}
    t = time.monotonic()
    rounds = run(SIZES, tmp_path, lines.append, times)
    seconds = time.monotonic() - t
    print("\n".join(lines))
    print(f"wall time: {', '.join(f'{k} {v:.0f} s' for k, v in times.items())}; total {seconds:.0f} s")
    before, after = rounds[0], rounds[-1]
    for r in rounds:
        record_property(f"round{r.round}_on_road", round(r.mean_on_road, 4))
        if r.round:
            record_property(f"round{r.round}_takeover_share", round(r.mean_share, 4))
    record_property("seconds", round(seconds))

    # Every round reports who drove: the takeover share per round road, from the sessions' spans.
    assert [r.round for r in rounds] == list(range(SIZES.rounds + 1))
    for r in rounds[1:]:
        assert len(r.takeover_share) == len(SIZES.round_seeds) and all(0 < s < 1 for s in r.takeover_share), r
        assert all(n >= 1 for n in r.takeovers), r
        assert any(line.startswith(f"  round {r.round}, road ") and "of the time" in line for line in lines)
    # Every model is the best of its trainings on the simulated validation roads, and says which it kept.
    for r in rounds:
        assert len(r.validation) == SIZES.candidates and r.validation[r.kept] == max(r.validation), r
        assert any(line.startswith(f"  model{r.round}: {SIZES.candidates} trainings on simulated validation roads")
                   and f"seed {r.kept}" in line for line in lines)
    assert after.mean_on_road >= before.mean_on_road + MARGIN and after.mean_on_road >= AFTER, "\n".join(lines)


@pytest.mark.parametrize("argv, says", [
    (["--val-target", "1.5"], "--val-target 1.5: a share of the validation drive, from 0 to 1"),
    (["--candidates", "2", "--max-candidates", "1"], "--max-candidates 1: needs --candidates 2 or more"),
    (["--max-candidates", "4"], "--max-candidates 4: needs --candidates 2 or more"),
])
def test_nonsense_retraining_flags_say_what_is_wrong(argv: list[str], says: str, capsys) -> None:  # type: ignore[no-untyped-def]
    from engine.demo.dagger import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and says in capsys.readouterr().err
