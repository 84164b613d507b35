"""The model runtime on real .tflite fixtures (tests/fixtures/models, built by make_models.py) with LiteRT.

No mocks and no timing: the fixtures compute documented functions from hand-set weights, so decisions on
crafted frames are exact. prepare() (the slow reference) is the oracle for the LUT/buffer path.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import _native
from engine.errors import EngineError
from engine.model import RUNTIMES, Decoder, Model, ModelError, load_interpreter
from engine.model.tflite_file import TFLiteFileError, check_tflite
from engine.sidecar import InputScale, ModelSidecar, SidecarError

MODELS = Path(__file__).parent / "fixtures" / "models"
ALL = ("brighter_half", "brighter_half_uint8", "brighter_half_int8", "combo_rgb", "history", "slow")
HALF = ("brighter_half", "brighter_half_uint8", "brighter_half_int8")
H, W = 24, 32
COMBO = {"encoding": "combo", "thresholds": []}  # fixture_json("brighter_half") made combo


def model_path(name: str) -> Path:
    return MODELS / f"{name}.tflite"


@pytest.fixture(scope="module", params=ALL)
def any_model(request: pytest.FixtureRequest) -> Model:
    return Model.load(model_path(request.param))


@pytest.fixture(scope="module", params=HALF)
def half_model(request: pytest.FixtureRequest) -> Model:
    return Model.load(model_path(request.param))


def halves(newest: tuple[int, int], older: tuple[int, int] | None = None, window: int = 2) -> np.ndarray:
    """A gray (window, H, W) uint8 window whose newest frame has the given left/right half levels."""
    frames = np.zeros((window, H, W), np.uint8)
    for i in range(window):
        left, right = newest if i == window - 1 else (older or (0, 0))
        frames[i, :, : W // 2], frames[i, :, W // 2 :] = left, right
    return frames


def one_line(e: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(e.value)
    assert "\n" not in text and text.strip() == text and text, repr(text)
    return text


def copy_model(tmp_path: Path, name: str, stem: str = "m", sidecar: dict[str, Any] | None = None) -> Path:
    """Copy a fixture to tmp_path/<stem>.tflite, with <stem>.json holding ``sidecar`` if given."""
    dst = tmp_path / f"{stem}.tflite"
    shutil.copyfile(model_path(name), dst)
    if sidecar is not None:
        (tmp_path / f"{stem}.json").write_text(json.dumps(sidecar))
    return dst


def fixture_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((MODELS / f"{name}.json").read_text())
    return data


# ---- runtime ---------------------------------------------------------------------------------------------
def test_litert_is_the_runtime_and_is_reported() -> None:
    interpreter, name = load_interpreter(model_path("brighter_half"), threads=1)
    assert name == "ai_edge_litert" == RUNTIMES[0]
    assert type(interpreter).__module__.startswith("ai_edge_litert")
    assert Model.load(model_path("brighter_half")).runtime == "ai_edge_litert"


@pytest.mark.skipif(importlib.util.find_spec("tflite_runtime") is not None, reason="tflite_runtime installed")
def test_runtime_missing_falls_through_then_fails_clearly() -> None:
    _, name = load_interpreter(model_path("brighter_half"), runtimes=("tflite_runtime", "ai_edge_litert"))
    assert name == "ai_edge_litert"
    with pytest.raises(ModelError) as e:
        load_interpreter(model_path("brighter_half"), runtimes=("tflite_runtime",))
    text = one_line(e)
    assert "no TFLite runtime could be imported" in text and "pip install ai-edge-litert" in text


def test_threads() -> None:
    assert Model.load(model_path("slow"), threads=1).runtime == "ai_edge_litert"
    with pytest.raises(ModelError) as e:
        Model.load(model_path("slow"), threads=0)
    assert "threads" in one_line(e)


def _bad_file(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"{kind}.tflite"
    good = model_path("brighter_half").read_bytes()
    if kind == "missing":
        return p
    if kind == "directory":
        p.mkdir()
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is a README, not a model\n")
    elif kind == "truncated":
        p.write_bytes(good[: len(good) // 2])
    elif kind == "corrupt":  # a valid header, then garbage: passes the identifier check, fails verification
        p.write_bytes(good[:8] + np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    elif kind == "unknown_op":  # structurally sound, but names an operator no runtime has
        p.write_bytes(_with_unknown_op(good))
    return p


def _with_unknown_op(model: bytes) -> bytes:
    """The model with every operator code set to builtin 9999, located with LiteRT's own schema module."""
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(model)
    root = schema.Model.GetRootAs(data, 0)
    for i in range(root.OperatorCodesLength()):
        table = root.OperatorCodes(i)._tab
        field = table.Offset(10)  # schema.fbs OperatorCode.builtin_code
        assert field, "the fixture's operator codes carry builtin_code"
        struct.pack_into("<i", data, table.Pos + field, 9999)
    return bytes(data)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("missing", "does not exist"),
        ("directory", "is a directory"),
        ("empty", "is empty"),
        ("text", "not a TensorFlow Lite model"),
        ("truncated", "is truncated or corrupt"),
        ("corrupt", "is truncated or corrupt"),
        ("unknown_op", "ai_edge_litert could not load"),
    ],
)
def test_unloadable_file_is_one_clear_line(tmp_path: Path, kind: str, words: str) -> None:
    path = _bad_file(tmp_path, kind)
    for load in (lambda: load_interpreter(path), lambda: Model.load(path, actions=["left", "right"])):
        with pytest.raises(ModelError) as e:
            load()
        text = one_line(e)
        assert words in text and str(path) in text
        assert "re-export" in text or "pass" in text  # says what to do
        assert isinstance(e.value, EngineError)


def test_every_truncation_is_refused_before_a_runtime_sees_it(tmp_path: Path) -> None:
    # Every cut point of the small fixtures, and 200 across each larger one: a cut-off FlatBuffer always
    # leaves some offset pointing past the end, which the structural check must find.
    p = tmp_path / "cut.tflite"
    for name in ALL:
        good = model_path(name).read_bytes()
        check_tflite(model_path(name))
        cuts = range(len(good)) if len(good) < 6000 else np.linspace(0, len(good) - 1, 200).astype(int)
        for cut in cuts:
            p.write_bytes(good[:cut])
            with pytest.raises(TFLiteFileError):
                check_tflite(p)


def test_a_runtime_that_refuses_the_file_is_final(tmp_path: Path) -> None:
    # LiteRT imports fine and refuses the file: tensorflow.lite must not be tried (it can crash on a file
    # LiteRT refused). A subprocess, so "tensorflow was never imported" is observable.
    bad = _bad_file(tmp_path, "unknown_op")
    code = (
        "import sys\n"
        "from engine.model.runtime import ModelError, load_interpreter\n"
        "try:\n"
        f"    load_interpreter({str(bad)!r}, runtimes=('ai_edge_litert', 'tensorflow'))\n"
        "except ModelError as e:\n"
        "    print(e)\n"
        "print('tensorflow imported' if 'tensorflow' in sys.modules else 'tensorflow not imported')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    message, verdict = proc.stdout.strip().splitlines()
    assert message.startswith(f"ai_edge_litert could not load {bad}") and verdict == "tensorflow not imported"


# ---- input transform -------------------------------------------------------------------------------------
def test_input_lut_values() -> None:
    expect_float = (np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)
    lut = Model.load(model_path("brighter_half")).input_lut()
    assert lut.dtype == np.float32 and lut.shape == (256,)
    np.testing.assert_array_max_ulp(lut, expect_float, maxulp=1)
    assert lut[0] == 0.0 and lut[255] == 1.0
    # Input quantised with scale 1/255: the sidecar's scale and the tensor's cancel, pixels pass through.
    u8 = Model.load(model_path("brighter_half_uint8"))
    assert u8.input_dtype == np.uint8 and u8.input_quantization == (pytest.approx(1 / 255), 0)
    assert np.array_equal(u8.input_lut(), np.arange(256, dtype=np.uint8))
    i8 = Model.load(model_path("brighter_half_int8"))
    assert i8.input_dtype == np.int8 and i8.input_quantization == (pytest.approx(1 / 255), -128)
    assert np.array_equal(i8.input_lut(), (np.arange(256) - 128).astype(np.int8))
    with pytest.raises(ValueError):
        lut[0] = 1.0  # read-only: shared with the native feed


def test_quantised_lut_rounds_and_clips_per_scale() -> None:
    # A different sidecar scale (pixel/127.5 - 1, range [-1, 1]) through the uint8 tensor (range [0, 1]):
    # negatives clip to 0, above 1 clips to 255, the rest is round(real * 255).
    spec = ModelSidecar.load(MODELS / "brighter_half_uint8.json")
    spec = spec.replace(scale={"multiply": 1 / 127.5, "add": -1})
    m = Model.load(model_path("brighter_half_uint8"), sidecar=spec)
    real = np.arange(256) / 127.5 - 1
    scale, zp = m.input_quantization or (0.0, 0)
    expect = np.clip(np.floor(real / scale + 0.5) + zp, 0, 255).astype(np.uint8)
    assert np.array_equal(m.input_lut(), expect)
    assert m.input_lut()[127] == 0 and m.input_lut()[255] == 255


def _window(model: Model, seed: int) -> np.ndarray:
    s = model.spec
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (s.window, s.height, s.width, s.channels), dtype=np.uint8)
    frames[0, 0, 0], frames[-1, -1, -1] = 0, 255  # both ends of the LUT
    return frames


def test_prepare_layout_is_the_documented_one(any_model: Model) -> None:
    """The oracle itself, checked element by element against the sidecar's layout definition."""
    s = any_model.spec
    frames = _window(any_model, 1)
    x = any_model.prepare(frames)
    lut = any_model.input_lut()
    assert x.shape == any_model.input_shape == s.input_shape and x.dtype == any_model.input_dtype
    rng = np.random.default_rng(2)
    for _ in range(200):
        f, y, col, c = (int(rng.integers(n)) for n in (s.window, s.height, s.width, s.channels))
        got = x[0, f, y, col, c] if s.layout == "frames" else x[0, y, col, f * s.channels + c]
        assert got == lut[frames[f, y, col, c]]


def test_lut_buffer_path_is_bit_exact_with_prepare(any_model: Model) -> None:
    for seed in range(3):
        frames = _window(any_model, seed)
        ref = any_model.prepare(frames)
        any_model.feed(frames)
        buf = any_model.input_buffer()
        assert buf.dtype == ref.dtype and np.array_equal(buf, ref)
        del buf
        via_buffer = any_model.invoke()
        via_set_tensor = any_model.predict(frames)
        assert np.array_equal(via_buffer, via_set_tensor)
        assert via_buffer.dtype == np.float32 and via_buffer.shape == (any_model.output_size,)


@pytest.mark.parametrize("skip", [1, 3])
@pytest.mark.parametrize("name", sorted(p.stem for p in MODELS.glob("*.tflite")))
def test_native_feed_window_is_bit_exact_with_prepare(name: str, skip: int) -> None:
    # The play loop's path (frames pushed into a LatestRing, the native feed writing the newest window
    # through the LUT into the input tensor) against the oracle, for every fixture: float32, uint8, int8,
    # both layouts, gray and rgb, with and without frame skip, over enough frames to wrap the ring.
    m = Model.load(model_path(name), overrides={"skip": skip})
    s = m.spec
    shape = (s.height, s.width) if s.color == "gray" else (s.height, s.width, 3)
    ring = _native.LatestRing(s.span, shape, 4)
    rng = np.random.default_rng(skip)
    frames = rng.integers(0, 256, (s.span + 12, *shape), dtype=np.uint8)
    frames[:, 0, 0] = 0
    frames[:, -1, -1] = 255  # both ends of the LUT in every frame
    t_ns = 10**9 + np.arange(len(frames), dtype=np.int64) * 33_333_333
    for end, frame in enumerate(frames):
        assert _native.push_frame(ring, frame, int(t_ns[end]), end)
        if end < s.span - 1:
            continue  # no complete window yet
        buf = m.input_buffer()
        stamp = _native.feed_window(ring, end, s.window, s.skip, m.input_lut(), s.layout, buf)
        fed = buf.copy()
        del buf
        window = frames[end - (s.window - 1) * s.skip : end + 1 : s.skip]  # oldest first
        assert stamp == (t_ns[end], end)
        ref = m.prepare(window)
        assert fed.dtype == ref.dtype and np.array_equal(fed, ref), f"window ending at {end}"


def test_gray_window_may_omit_the_channel_axis() -> None:
    m = Model.load(model_path("brighter_half"))
    frames = halves((200, 50))
    assert np.array_equal(m.prepare(frames), m.prepare(frames[..., None]))
    with pytest.raises(ValueError, match="uint8"):
        m.prepare(frames.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(2, 24, 32, 1\)"):
        m.prepare(frames[:1])


def test_input_buffer_lifetime() -> None:
    m = Model.load(model_path("brighter_half"))
    buf = m.input_buffer()
    address = buf.ctypes.data
    assert buf.shape == m.input_shape and buf.flags.writeable
    with pytest.raises(RuntimeError, match="input_buffer"):
        m.invoke()  # the runtime refuses to run while a view of its memory is alive
    del buf
    m.invoke()
    buf = m.input_buffer()
    assert buf.ctypes.data == address  # the tensor did not move across invoke()
    del buf


# ---- decisions -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("newest", "older", "held"),
    [
        ((200, 50), None, [True, False]),
        ((50, 200), None, [False, True]),
        ((128, 128), None, [False, False]),
        ((0, 0), None, [False, False]),
        ((255, 255), None, [False, False]),
        ((60, 40), (0, 255), [True, False]),  # only the newest frame counts: the order is right
        ((40, 60), (255, 0), [False, True]),
    ],
)
def test_brighter_half_decisions(
    half_model: Model, newest: tuple[int, int], older: Any, held: list[bool]
) -> None:
    decoder = half_model.decoder()
    assert decoder.decode(half_model.predict(halves(newest, older))).tolist() == held
    half_model.feed(halves(newest, older))
    assert decoder.decode(half_model.invoke()).tolist() == held


def test_quantised_models_decide_like_float() -> None:
    models = [Model.load(model_path(n)) for n in HALF]
    rng = np.random.default_rng(3)
    checked = 0
    for _ in range(60):
        left, right = (int(v) for v in rng.integers(20, 236, 2))
        frames = halves((left, right), (int(rng.integers(256)), int(rng.integers(256))))
        noise = rng.integers(-15, 16, frames.shape)
        frames = np.clip(frames.astype(int) + noise, 0, 255).astype(np.uint8)
        d = (frames[-1, :, : W // 2].mean() - frames[-1, :, W // 2 :].mean()) / 255
        expect = [bool(d > 0.015), bool(-d > 0.015)]  # the rule make_models.py builds (margin M)
        if min(abs(d - 0.015), abs(-d - 0.015)) < 0.01:
            continue  # too close to the boundary for a quantised model to be expected to agree
        checked += 1
        for m in models:
            assert m.decoder().decode(m.predict(frames)).tolist() == expect, m.path.name
    assert checked > 30


def test_quantised_output_is_dequantised() -> None:
    m = Model.load(model_path("brighter_half_uint8"))
    out = m.predict(halves((255, 0)))
    assert out.dtype == np.float32 and 0.95 <= out[0] <= 1.0 and 0.0 <= out[1] <= 0.05


def _solid(rgb_newest: tuple[int, int, int], rgb_older: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    frames = np.zeros((3, H, W, 3), np.uint8)
    frames[:2] = rgb_older
    frames[2] = rgb_newest
    return frames


@pytest.mark.parametrize(
    ("newest", "older", "held"),
    [
        ((30, 30, 30), (0, 0, 0), []),
        ((220, 10, 10), (0, 0, 255), ["left"]),
        ((10, 220, 10), (255, 0, 0), ["right"]),
        ((10, 10, 220), (0, 255, 0), ["left", "up"]),
    ],
)
def test_combo_rgb_channels_layout(newest: Any, older: Any, held: list[str]) -> None:
    m = Model.load(model_path("combo_rgb"))
    assert m.input_layout == "channels" and m.input_shape == (1, H, W, 9) and m.spec.encoding == "combo"
    decoded = m.decoder().decode(m.predict(_solid(newest, older)))
    assert decoded.dtype == np.bool_ and decoded.shape == (3,)
    assert [a for a, on in zip(m.spec.actions, decoded, strict=True) if on] == held


def test_history_input() -> None:
    m = Model.load(model_path("history"))
    assert m.history_shape == (2, 2)
    dec = m.decoder()
    flat = halves((100, 100))
    assert dec.decode(m.predict(flat)).tolist() == [False, False]  # history starts all released
    m.set_history(np.array([[0, 0], [1, 0]]))  # left held in the newest row: kept
    assert dec.decode(m.predict(flat)).tolist() == [True, False]
    assert dec.decode(m.predict(halves((40, 200)))).tolist() == [True, True]
    m.set_history(np.array([[1, 1], [0, 0]], dtype=bool))  # only the oldest row: ignored by this model
    assert dec.decode(m.predict(flat)).tolist() == [False, False]
    m.set_history(np.array([[0.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    assert dec.decode(m.predict(flat)).tolist() == [False, True]
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        m.set_history(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="no history input"):
        Model.load(model_path("brighter_half")).set_history(np.zeros((2, 2)))


# ---- decoder ---------------------------------------------------------------------------------------------
def _spec(**changes: Any) -> ModelSidecar:
    return ModelSidecar.from_dict({**fixture_json("brighter_half"), **changes})


def test_multihot_threshold_is_inclusive_and_stateless_without_hysteresis() -> None:
    dec = Decoder(_spec(thresholds=[0.5, 0.8]))
    assert dec.decode(np.array([0.5, 0.79])).tolist() == [True, False]
    assert dec.decode(np.array([0.49, 0.8])).tolist() == [False, True]
    assert dec.decode(np.array([0.6, 0.6])).tolist() == [True, False]
    assert dec.decode(np.array([np.nan, np.nan])).tolist() == [False, False]
    with pytest.raises(ValueError):
        dec.decode(np.zeros(3))


def test_multihot_hysteresis_releases_only_below_threshold_minus_hysteresis() -> None:
    dec = Decoder(_spec(thresholds=[0.5, 0.5], hysteresis=0.2))
    steps = [  # (output for both actions, held left, held right): right is never pressed first
        ([0.6, 0.45], [True, False]),
        ([0.45, 0.45], [True, False]),
        ([0.3, 0.3], [True, False]),
        ([0.299, 0.299], [False, False]),
        ([0.45, 0.5], [False, True]),
        ([np.nan, 0.31], [False, True]),
    ]
    for out, held in steps:
        assert dec.decode(np.array(out, np.float32)).tolist() == held
    assert dec.held.tolist() == [False, True]
    dec.reset()
    assert dec.decode(np.array([0.45, 0.45])).tolist() == [False, False]


def test_combo_decoder_argmax_first_on_ties() -> None:
    dec = Decoder(ModelSidecar.load(MODELS / "combo_rgb.json"))
    assert dec.decode(np.array([0.1, 0.2, 0.3, 0.4])).tolist() == [True, False, True]
    assert dec.decode(np.array([0.9, 0.0, 0.0, 0.1])).tolist() == [False, False, False]
    assert dec.decode(np.array([0.0, 0.5, 0.5, 0.0])).tolist() == [True, False, False]


# ---- sidecar ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_fixture_sidecars_round_trip(tmp_path: Path, name: str) -> None:
    s = ModelSidecar.load(MODELS / f"{name}.json")
    assert s.to_dict() == fixture_json(name)  # the exporter's JSON is exactly the canonical form
    assert ModelSidecar.from_dict(s.to_dict()) == s
    s.save(tmp_path / "m.json")
    assert ModelSidecar.load(tmp_path / "m.json") == s
    assert not list(tmp_path.glob(".*tmp*"))  # atomic save left no temp file


def test_sidecar_defaults_extra_keys_and_derived_fields(tmp_path: Path) -> None:
    s = ModelSidecar.from_dict(
        {"fps": 60, "window": 4, "skip": 2, "frame_size": [84, 84], "color": "rgb", "layout": "channels",
         "actions": ["a", "b", "c"], "trained_on": ["s1", "s2"]}
    )
    assert s.thresholds == (0.5, 0.5, 0.5) and s.hysteresis == 0.0 and s.history == 0
    assert s.scale == InputScale(1 / 255, 0.0) and s.encoding == "multihot" and s.fps == 60.0
    assert s.span == 7 and s.input_shape == (1, 84, 84, 12) and s.outputs == 3
    assert s.extra == {"trained_on": ["s1", "s2"]}
    s.save(tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["trained_on"] == ["s1", "s2"]
    assert s.replace(window=2).window == 2 and s.replace(window=2).extra == s.extra
    # Direct construction accepts lists (as JSON gives them) and stores tuples.
    fields: dict[str, Any] = {"fps": 30, "window": 1, "frame_size": [8, 8], "color": "gray"}
    fields["layout"] = "frames"
    direct = ModelSidecar(**fields, actions=("x",), classes=())
    fields.update(actions=["x"], classes=[])
    assert ModelSidecar(**fields) == direct
    assert direct.actions == ("x",) and direct.frame_size == (8, 8) and hash(direct) == hash(direct.replace())


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"window": 0}, "window must be >= 1"),
        ({"window": True}, "window must be an integer"),
        ({"window": 2.5}, "window must be an integer"),
        ({"skip": 0}, "skip must be >= 1"),
        ({"fps": -1}, "fps must be > 0"),
        ({"fps": "30"}, "fps must be a finite number"),
        ({"fps": float("nan")}, "fps must be a finite number"),
        ({"color": "bgr"}, "color must be one of 'gray', 'rgb'"),
        ({"layout": "nchw"}, "layout must be one of"),
        ({"encoding": "softmax"}, "encoding must be one of"),
        ({"frame_size": [32]}, "frame_size must be [width, height]"),
        ({"frame_size": [32, 0]}, "frame_size must be [width, height]"),
        ({"actions": []}, "actions is empty"),
        ({"actions": "left"}, "actions must be a list"),
        ({"actions": ["left", "left"]}, "'left' appears twice"),
        ({"thresholds": [0.5]}, "thresholds has 1 values but there are 2 actions"),
        ({"hysteresis": -0.1}, "hysteresis must be >= 0"),
        ({"history": -1}, "history must be >= 0"),
        ({"scale": {"mul": 2}}, "scale must be"),
        ({"scale": {"multiply": 0}}, "scale.multiply is 0"),
        ({"classes": [[], ["left"]]}, 'classes are only for encoding "combo"'),
        ({"format_version": 3}, "format_version 3 is not supported"),
        ({"format_version": 2}, "format_version must be 1 for a sidecar without axes"),  # 2: axes (issue 14)
        ({**COMBO, "classes": [[], ["jump"]]}, "names 'jump', which is not in actions"),
        ({**COMBO, "classes": [[], ["left"], ["left"]]}, "repeats an earlier class"),
        ({**COMBO, "classes": [[]]}, "at least 2 classes"),
        ({**COMBO, "hysteresis": 0.1, "classes": [[], ["left"]]}, 'hysteresis is only for encoding'),
        ({"encoding": "combo", "classes": [[], ["left"]]}, 'thresholds are only for encoding "multihot"'),
    ],
)
def test_sidecar_validation_errors_are_one_line(changes: dict[str, Any], words: str) -> None:
    data = {**fixture_json("brighter_half"), **changes}
    with pytest.raises(SidecarError) as e:
        ModelSidecar.from_dict(data)
    assert words in one_line(e)


def test_sidecar_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SidecarError) as e:
        ModelSidecar.load(tmp_path / "none.json")
    assert "does not exist" in one_line(e)
    bad = tmp_path / "bad.json"
    bad.write_text('{"fps": 30,\n "window": }')
    with pytest.raises(SidecarError) as e:
        ModelSidecar.load(bad)
    assert "not valid JSON (line 2" in one_line(e) and str(bad) in str(e.value)
    bad.write_text("[1, 2]")
    with pytest.raises(SidecarError) as e:
        ModelSidecar.load(bad)
    assert "must be a JSON object" in one_line(e)
    bad.write_text(json.dumps({k: v for k, v in fixture_json("brighter_half").items() if k != "fps"}))
    with pytest.raises(SidecarError) as e:
        ModelSidecar.load(bad)
    assert one_line(e) == f"{bad}: field 'fps' is missing; add it to the sidecar"


# ---- fit checks ------------------------------------------------------------------------------------------
def test_mismatched_window_is_refused_naming_it(tmp_path: Path) -> None:
    path = copy_model(tmp_path, "brighter_half", sidecar={**fixture_json("brighter_half"), "window": 3})
    with pytest.raises(ModelError) as e:
        Model.load(path)
    assert one_line(e) == (
        "model input expects 2 frames of 32x24 gray (1, 2, 24, 32, 1) but m.json says window 3: "
        "pass --frames 2 or fix m.json"
    )
    with pytest.raises(ModelError) as e:
        Model.load(model_path("brighter_half"), overrides={"window": 3})
    assert one_line(e).endswith("but --frames is 3: pass --frames 2")
    assert Model.load(path, overrides={"window": 2}).spec.window == 2  # the flag wins over m.json


@pytest.mark.parametrize(
    ("name", "changes", "words"),
    [
        ("brighter_half", {"frame_size": [84, 84]}, "says frame_size 84x84: pass --frame-size 32x24"),
        ("brighter_half", {"color": "rgb"}, "says color rgb: pass --color gray"),
        ("brighter_half", {"layout": "channels"}, "m.json says layout channels: pass --layout frames"),
        ("brighter_half", {"actions": ["left", "right", "up"], "thresholds": [0.5] * 3},
         "model outputs 2 values (1, 2) but m.json says actions ['left', 'right', 'up']"),
        ("brighter_half", {"history": 2},
         "model has no history input but m.json says history 2: pass --history 0"),
        ("history", {"history": 0},
         "last 2 action vectors (1, 2, 2) but m.json says history 0: pass --history 2"),
        ("combo_rgb", {"window": 2},
         "9 stacked channels of 32x24 (1, 24, 32, 9) but m.json says window 2 of rgb: pass --frames 3"),
        ("combo_rgb", {"classes": [[], ["left"], ["right"]]},
         "model outputs 4 values (1, 4) but m.json says classes 3"),
        ("slow", {"color": "rgb"}, "m.json says color rgb: pass --color gray"),
    ],
)
def test_mismatch_names_the_dimension(tmp_path: Path, name: str, changes: dict[str, Any], words: str) -> None:
    path = copy_model(tmp_path, name, sidecar={**fixture_json(name), **changes})
    with pytest.raises(ModelError) as e:
        Model.load(path)
    text = one_line(e)
    assert words in text and text.endswith("or fix m.json")


def test_bad_sidecar_beside_model_is_a_model_error(tmp_path: Path) -> None:
    path = copy_model(tmp_path, "brighter_half", sidecar={**fixture_json("brighter_half"), "color": "bgr"})
    with pytest.raises(ModelError) as e:
        Model.load(path)
    assert one_line(e).startswith(f"{tmp_path / 'm.json'}: color must be one of")
    with pytest.raises(ModelError) as e:
        Model.load(model_path("brighter_half"), overrides={"thresholds": [0.5]})
    assert "thresholds has 1 values" in one_line(e)
    with pytest.raises(ModelError) as e:
        Model.load(model_path("brighter_half"), overrides={"windw": 2})
    assert "unknown model setting 'windw'" in one_line(e)


def test_explicit_sidecar_wins_over_the_file() -> None:
    spec = ModelSidecar.load(MODELS / "brighter_half.json").replace(fps=60.0, actions=["a", "d"])
    m = Model.load(model_path("brighter_half"), sidecar=spec)
    assert m.spec == spec and m.sidecar_path is None
    assert Model.load(model_path("brighter_half")).sidecar_path == MODELS / "brighter_half.json"


# ---- no sidecar ------------------------------------------------------------------------------------------
def test_without_sidecar_actions_are_required(tmp_path: Path) -> None:
    path = copy_model(tmp_path, "brighter_half")
    with pytest.raises(ModelError) as e:
        Model.load(path)
    assert one_line(e) == (
        f"{path} has no sidecar (m.json is missing), so its action names are unknown: pass --actions with "
        "2 names in output column order"
    )
    m = Model.load(path, actions=["left", "right"])
    assert m.sidecar_path is None and m.spec.window == 2 and m.spec.frame_size == (W, H)
    assert m.spec.color == "gray" and m.spec.layout == "frames" and m.spec.history == 0
    assert set(m.assumed) == {"fps", "scale", "thresholds"}
    assert m.decoder().decode(m.predict(halves((200, 50)))).tolist() == [True, False]
    assert m.spec.replace(fps=30.0) == m.spec  # default fps, recorded as assumed above
    with pytest.raises(ModelError) as e:
        Model.load(path, actions=["left"])
    assert "model outputs 2 values" in one_line(e) and "--actions is ['left']" in str(e.value)
    assert "fps" not in Model.load(path, actions=["a", "b"], overrides={"fps": 15}).assumed


def test_without_sidecar_stacked_channels_need_window(tmp_path: Path) -> None:
    path = copy_model(tmp_path, "combo_rgb")
    with pytest.raises(ModelError) as e:
        Model.load(path, actions=["left", "right", "up"])
    assert one_line(e) == (
        "model input (1, 24, 32, 9) stacks 9 channels, so it holds several frames: "
        "pass --frames 9 (gray) or --frames 3 (rgb)"
    )
    with pytest.raises(ModelError) as e:
        Model.load(path, actions=["left", "right", "up"], overrides={"window": 2})
    assert "which --frames 2 does not split into gray or rgb frames" in one_line(e)
    combo = {"encoding": "combo", "classes": [[], ["left"], ["right"], ["left", "up"]]}
    m = Model.load(path, actions=["left", "right", "up"], overrides={"window": 3, **combo})
    assert m.spec.color == "rgb" and m.spec.window == 3 and m.spec.layout == "channels"
    assert m.decoder().decode(m.predict(_solid((10, 220, 10)))).tolist() == [False, True, False]
    assert m.notes == ("model input (1, 24, 32, 9) stacks 9 channels: read as 3 rgb frames (the only reading "
                       "that fits --frames 3)",)
    m = Model.load(path, actions=["left", "right", "up"], overrides={"color": "gray", **combo})
    assert m.spec.window == 9 and m.spec.color == "gray"
    assert m.notes == ("model input (1, 24, 32, 9) stacks 9 channels: read as 9 gray frames (the only reading "
                       "that fits --color gray)",)
    m = Model.load(path, actions=["left", "right", "up"], overrides={"color": "rgb", "window": 3, **combo})
    assert m.notes == ()  # the flags said it all


@pytest.mark.parametrize("flags", [{}, {"color": "gray"}, {"window": 4}])
def test_without_sidecar_the_one_reading_that_fits_is_taken_and_said(tmp_path: Path, flags: dict[str, Any]) -> None:
    # slow.tflite stacks 4 channels of 84x84: 3 does not divide 4, so 4 gray frames is the only reading.
    path = copy_model(tmp_path, "slow", "s")
    m = Model.load(path, actions=["l", "r"], overrides=flags)
    assert (m.spec.window, m.spec.color, m.spec.layout, m.spec.frame_size) == (4, "gray", "channels", (84, 84))
    (note,) = m.notes
    assert note.startswith("model input (1, 84, 84, 4) stacks 4 channels: read as 4 gray frames (the only reading")
    frames = np.random.default_rng(0).integers(0, 256, (4, 84, 84), dtype=np.uint8)
    assert m.predict(frames).shape == (2,)


def test_without_sidecar_a_reading_the_flags_rule_out_is_refused(tmp_path: Path) -> None:
    path = copy_model(tmp_path, "slow", "s")
    with pytest.raises(ModelError) as e:
        Model.load(path, actions=["l", "r"], overrides={"color": "rgb"})
    assert one_line(e) == ("model input expects 4 stacked channels of 84x84 (1, 84, 84, 4) but --color is rgb: "
                           "pass --color gray")
    with pytest.raises(ModelError) as e:
        Model.load(path, actions=["l", "r"], overrides={"window": 2})
    assert one_line(e) == ("model input (1, 84, 84, 4) stacks 4 channels, which --frames 2 does not split into "
                           "gray or rgb frames: pass --frames 4 (gray)")


def test_without_sidecar_history_is_inferred(tmp_path: Path) -> None:
    m = Model.load(copy_model(tmp_path, "history"), actions=["left", "right"])
    assert m.spec.history == 2 and m.history_shape == (2, 2)
