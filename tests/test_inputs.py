"""The evdev input backend: its error paths, on real paths (every way of not getting a keyboard is one
EngineError that names the device and says what to do; python-evdev itself is not replaced), and the
translation of mouse and pad event sequences to actions and axes (engine.actions.evdev_map).

The sequences are as `evtest` shows them for a USB mouse and for an Xbox pad on the kernel's xpad driver
(sticks -32768..32767 with flat 128, triggers 0..1023, the d-pad as ABS_HAT0X/Y) and a DualShock-style pad
(sticks 0..255): the translation is a pure function of (t, type, code, value) rows and the device's
absinfo, so no device is needed. The uinput tests drive a real virtual pad through EvdevInput where
/dev/uinput exists, and skip saying so where it does not (as on the development machine)."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

from engine.actions.evdev_map import (
    ABS_HAT0X,
    ABS_HAT0Y,
    ABS_RX,
    ABS_RZ,
    ABS_X,
    ABS_Y,
    ABS_Z,
    EV_ABS,
    EV_KEY,
    EV_REL,
    EV_SYN,
    REL_WHEEL,
    REL_X,
    REL_Y,
    AbsRange,
    normalise,
    translate,
)
from engine.errors import EngineError

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="evdev is Linux only")

NOBODY = 65534
# Major 13 is the input subsystem (Documentation/admin-guide/devices.txt); no driver serves this minor,
# so opening the node fails with ENXIO (or EACCES first, for a user who may not read it).
INPUT_MAJOR, FREE_MINOR = 13, 250


def _evdev_input(**kw: object) -> None:
    from engine.actions.inputs import EvdevInput

    EvdevInput(["left", "right"], ["f12"], **kw)  # type: ignore[arg-type]


def _mknod_input(path: Path) -> Path:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(INPUT_MAJOR, FREE_MINOR))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    return path


def test_a_missing_device_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"cannot open .*event9 \(No such file or directory\)"):
        _evdev_input(devices=[str(tmp_path / "event9")])


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_a_path_that_is_not_an_input_device_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "event0"
    if kind == "file":
        path.write_bytes(b"\0" * 64)
    else:
        os.mkfifo(path)
    with pytest.raises(EngineError, match=r"Inappropriate ioctl for device.*check these are input event devices"):
        _evdev_input(devices=[str(path)])


def test_a_device_node_without_a_device_is_one_clear_error(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("as a user the node's 0600 mode refuses it first (the permission test covers that)")
    _mknod_input(tmp_path / "event3")
    with pytest.raises(EngineError, match=r"cannot open .*event3 \(No such device or address\)"):
        _evdev_input(input_dir=tmp_path)


def test_no_event_devices_says_so(tmp_path: Path) -> None:
    (tmp_path / "event0").write_bytes(b"")  # not a character device: not an input device either
    with pytest.raises(EngineError, match=f"no input devices under {tmp_path}"):
        _evdev_input(input_dir=tmp_path)


def _in_unprivileged_child(fn: object) -> str:
    """Run fn() in a forked child as the nobody user and return what it wrote: root reads every file, so
    this is how a root test run meets the permission error an ordinary user gets."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a threaded process can deadlock; the child only makes syscalls.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(w, str(fn()).encode())  # type: ignore[operator]
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    return out


def test_an_unreadable_device_gets_the_input_group_fix() -> None:
    import evdev

    from engine.actions.inputs import event_devices

    # Not under tmp_path: pytest's base temp dir is 0700, so another user could not even look inside.
    with tempfile.TemporaryDirectory(prefix="engine-evdev-") as d:
        input_dir = Path(d)
        input_dir.chmod(0o755)
        node = _mknod_input(input_dir / "event5")
        node.chmod(0o600)  # root's alone, as /dev/input/event* (root:input 0660) for a user outside 'input'

        def attempt() -> str:
            # evdev.list_devices hides the node from this user even when it need not be writable...
            listed = (evdev.list_devices(str(input_dir), writable=False), event_devices(input_dir))
            try:
                _evdev_input(input_dir=input_dir)
            except EngineError as e:
                return f"{listed}\n{e}"
            return f"{listed}\nno error"

        out = _in_unprivileged_child(attempt) if os.geteuid() == 0 else attempt()
    listed, message = out.split("\n", 1)
    assert listed == repr(([], [str(node)]))  # ...while the engine sees it, and can say why it cannot read it
    assert f"permission denied on {node}" in message and "'input' group" in message and "udev rule" in message


XPAD_STICK = AbsRange(-32768, 32767, 128)
XPAD_TRIGGER = AbsRange(0, 1023, 0)
XPAD = {ABS_X: XPAD_STICK, ABS_Y: XPAD_STICK, ABS_RX: XPAD_STICK, 0x04: XPAD_STICK, ABS_Z: XPAD_TRIGGER,
        ABS_RZ: XPAD_TRIGGER, ABS_HAT0X: AbsRange(-1, 1), ABS_HAT0Y: AbsRange(-1, 1)}
BTN_SOUTH, BTN_EAST, BTN_TL, KEY_A = 0x130, 0x131, 0x136, 30
REL_HWHEEL, REL_WHEEL_HI_RES = 0x06, 0x0B
SYN = (EV_SYN, 0, 0)


def _rows(*events: tuple[int, int, int], t0: int = 1_000_000) -> list[tuple[int, int, int, int]]:
    """Events 1 ms apart, as (t_ns, type, code, value)."""
    return [(t0 + i * 1_000_000, *e) for i, e in enumerate(events)]


def test_stick_and_trigger_normalisation_uses_the_devices_range_and_flat_zone() -> None:
    s = XPAD_STICK
    assert normalise(0, s, False) == 0.0 and normalise(-1, s, False) == 0.0
    assert normalise(128, s, False) == 0.0 and normalise(-128, s, False) == 0.0  # inside the flat zone
    assert normalise(32767, s, False) == 1.0 and normalise(-32768, s, False) == -1.0
    assert 0.0 < normalise(129, s, False) < 1e-4  # just past the zone: rescaled from 0, no jump
    assert normalise(16384, s, False) == pytest.approx((16384 - 128) / (32767 - 128))
    assert normalise(-16384, s, False) == pytest.approx(-(16384 - 128) / (32768 - 128))
    ds4 = AbsRange(0, 255, 0)  # rest at 127: both ends still reach -1 and +1
    assert normalise(0, ds4, False) == -1.0 and normalise(255, ds4, False) == 1.0
    assert normalise(127, ds4, False) == 0.0 and normalise(128, ds4, False) == pytest.approx(1 / 128)
    assert normalise(0, XPAD_TRIGGER, True) == 0.0 and normalise(1023, XPAD_TRIGGER, True) == 1.0
    assert normalise(512, XPAD_TRIGGER, True) == pytest.approx(512 / 1023)
    assert normalise(10, AbsRange(0, 255, 30), True) == 0.0  # a trigger's flat is at its rest end
    assert normalise(5, AbsRange(5, 5), False) == 0.0  # a degenerate range is no division by zero


def test_a_pad_sequence_becomes_buttons_and_axes_in_order() -> None:
    rows = _rows(
        (EV_ABS, ABS_X, 20000), (EV_ABS, ABS_Y, 32767), SYN,  # left stick right and fully down
        (EV_KEY, BTN_SOUTH, 1), SYN, (EV_KEY, BTN_SOUTH, 2), SYN,  # A pressed; 2 is a repeat, dropped
        (EV_ABS, ABS_Z, 1023), SYN,  # left trigger full
        (EV_ABS, ABS_HAT0Y, -1), SYN, (EV_ABS, ABS_HAT0Y, 1), SYN, (EV_ABS, ABS_HAT0Y, 0), SYN,  # d-pad up, down, off
        (EV_ABS, ABS_X, 100), (EV_ABS, ABS_Y, -50), SYN,  # back inside the flat zone: 0, 0
        (EV_ABS, ABS_X, 90), SYN,  # still 0: not sent again
        (EV_KEY, BTN_SOUTH, 0), (EV_KEY, BTN_EAST, 1), SYN,  # A up; B is not configured
        (EV_ABS, ABS_RX, 30000), SYN,  # right stick: not configured
    )
    actions = ["pad_a", "pad_up", "pad_down", "left"]
    axes = ["pad_lx", "pad_ly", "pad_lt"]
    keys, ax = translate(rows, actions, axes, XPAD)
    t = {i: r[0] for i, r in enumerate(rows)}
    assert [(k[1], k[2]) for k in keys] == [(0, 1), (1, 1), (1, 0), (2, 1), (2, 0), (0, 0)]
    assert keys[0][0] == t[3]  # stamped with the kernel's time of its event
    assert [(a[1], round(a[2], 4)) for a in ax] == [
        (0, round(normalise(20000, XPAD_STICK, False), 4)), (1, 1.0), (2, 1.0), (0, 0.0), (1, 0.0)]
    assert all(a[2] >= 0 for a in ax if a[1] == 1)  # stick down is positive, as evdev's ABS_Y


def test_a_mouse_sequence_becomes_counts_and_notches() -> None:
    rows = _rows(
        (EV_REL, REL_X, 3), (EV_REL, REL_Y, -2), SYN, (EV_REL, REL_X, -7), SYN,
        (EV_REL, REL_WHEEL, 1), (EV_REL, REL_WHEEL_HI_RES, 120), SYN,  # one notch up; hi-res is the same notch
        (EV_REL, REL_WHEEL, -1), (EV_REL, REL_WHEEL_HI_RES, -120), SYN,
        (EV_REL, REL_HWHEEL, 1), SYN,  # horizontal: no axis
        (EV_KEY, 0x110, 1), SYN, (EV_KEY, 0x110, 0), SYN,  # BTN_LEFT
        (EV_KEY, KEY_A, 1), SYN,  # a key on a mouse with keys: not configured here
    )
    keys, ax = translate(rows, ["mouse_left"], ["wheel", "mouse_dx", "mouse_dy"], {})
    assert [(a[1], a[2]) for a in ax] == [(1, 3.0), (2, -2.0), (1, -7.0), (0, 1.0), (0, -1.0)]
    assert [(k[1], k[2]) for k in keys] == [(0, 1), (0, 0)]
    _, only_dx = translate(rows, [], ["mouse_dx"], {})
    assert [a[2] for a in only_dx] == [3.0, -7.0]  # unconfigured axes never come out


def test_pad_buttons_can_be_hotkeys_and_axes_need_the_device_to_have_them() -> None:
    rows = _rows((EV_KEY, BTN_TL, 1), SYN, (EV_ABS, ABS_X, 32767), SYN, (EV_KEY, BTN_TL, 0), SYN)
    keys, ax = translate(rows, ["pad_a"], ["pad_lx"], {}, hotkeys=["pad_lb"])
    assert [(k[1], k[2]) for k in keys] == [(-1, 1), (-1, 0)]
    assert ax == []  # a device without ABS_X absinfo has no pad_lx


class _Device:
    """What EvdevInput._choose_pad reads of an opened python-evdev InputDevice."""

    def __init__(self, name: str, path: str, keys: list[int], absolute: list[int]) -> None:
        self.name, self.path = name, path
        self._caps = {EV_KEY: keys, EV_ABS: [(c, None) for c in absolute]}

    def capabilities(self) -> dict[int, list]:
        return self._caps


def test_pad_is_chosen_by_name_or_path_and_a_miss_lists_the_pads_found() -> None:
    from engine.actions.inputs import EvdevInput

    devs = [_Device("AT Translated Set 2 keyboard", "/dev/input/event0", [KEY_A], []),
            _Device("Microsoft X-Box 360 pad", "/dev/input/event5", [BTN_SOUTH], [ABS_X]),
            _Device("Sony Interactive Entertainment Wireless Controller", "/dev/input/event7", [BTN_SOUTH], [ABS_X])]
    assert EvdevInput._choose_pad(devs, "/dev/input/event7") is devs[2]
    assert EvdevInput._choose_pad(devs, "x-box 360") is devs[1]
    with pytest.raises(EngineError, match=r"--pad 'joystick' matches no gamepad; pads found: "
                                          r"'Microsoft X-Box 360 pad' \(/dev/input/event5\), 'Sony"):
        EvdevInput._choose_pad(devs, "joystick")
    with pytest.raises(EngineError, match="matches more than one gamepad"):
        EvdevInput._choose_pad(devs, "o")
    with pytest.raises(EngineError, match="pads found: none"):
        EvdevInput._choose_pad(devs[:1], "pad")


UINPUT = "/dev/uinput"
needs_uinput = pytest.mark.skipif(not os.access(UINPUT, os.W_OK),
                                  reason=f"{UINPUT} is missing or not writable here (no uinput module, or a "
                                         "container without it): the virtual-pad test needs it")


@needs_uinput
def test_a_uinput_pad_is_read_through_evdev() -> None:  # pragma: no cover - needs /dev/uinput
    import time

    import evdev
    from evdev import AbsInfo, UInput, ecodes

    from engine.actions.inputs import EvdevInput

    stick = AbsInfo(0, -32768, 32767, 16, 128, 0)
    caps = {ecodes.EV_KEY: [ecodes.BTN_SOUTH, ecodes.BTN_EAST],
            ecodes.EV_ABS: [(ecodes.ABS_X, stick), (ecodes.ABS_Y, stick), (ecodes.ABS_Z, AbsInfo(0, 0, 1023, 0, 0, 0)),
                            (ecodes.ABS_HAT0Y, AbsInfo(0, -1, 1, 0, 0, 0))]}
    with UInput(caps, name="engine test pad") as ui:
        time.sleep(0.3)  # udev makes the node
        src = EvdevInput(["pad_a", "pad_up"], [], axes=["pad_lx", "pad_lt"], pad="engine test pad",
                         devices=evdev.list_devices())
        src.start()
        try:
            ui.write(ecodes.EV_ABS, ecodes.ABS_X, 32767)
            ui.write(ecodes.EV_KEY, ecodes.BTN_SOUTH, 1)
            ui.write(ecodes.EV_ABS, ecodes.ABS_HAT0Y, -1)
            ui.write(ecodes.EV_ABS, ecodes.ABS_Z, 1023)
            ui.syn()
            deadline = time.monotonic() + 5
            keys: list = []
            axes: list = []
            while time.monotonic() < deadline and (len(keys) < 2 or len(axes) < 2):
                (_, a, v, _, _), _ = src.poll_sources()
                keys += list(zip(a.tolist(), v.tolist(), strict=True))
                _, aa, vv, _, _ = src.poll_axes()
                axes += [(x, y) for x, y in zip(aa.tolist(), vv.tolist(), strict=True) if y != 0.0]
                time.sleep(0.02)
        finally:
            src.stop()
    assert sorted(keys) == [(0, 1), (1, 1)] and sorted(axes) == [(0, 1.0), (1, 1.0)]


def test_pad_buttons_are_in_the_native_table_with_evdev_codes_and_xinput_masks() -> None:
    from engine import _native
    from engine.actions.names import ACTION_NAMES, PAD_BUTTONS

    info = {n: _native.action_info(n) for n in PAD_BUTTONS}
    assert set(PAD_BUTTONS) <= set(_native.action_names()) and set(PAD_BUTTONS) <= set(ACTION_NAMES)
    # linux/input-event-codes.h, as the xpad driver reports an Xbox pad; XINPUT_GAMEPAD_* bits.
    assert {n: i["evdev_code"] for n, i in info.items()} == {
        "pad_a": 0x130, "pad_b": 0x131, "pad_x": 0x133, "pad_y": 0x134, "pad_lb": 0x136, "pad_rb": 0x137,
        "pad_back": 0x13A, "pad_start": 0x13B, "pad_ls": 0x13D, "pad_rs": 0x13E, "pad_up": 0x220, "pad_down": 0x221,
        "pad_left": 0x222, "pad_right": 0x223}
    masks = [i["xinput_mask"] for i in info.values()]
    assert len(set(masks)) == len(masks) and all(m and m & (m - 1) == 0 for m in masks)
    assert all(i["x_keysym"] == 0 and i["x_button"] == 0 and i["win_vk"] == 0 for i in info.values())
    assert all(_native.action_info(n)["xinput_mask"] == 0 for n in ("a", "left", "mouse_left"))
