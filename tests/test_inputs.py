"""The evdev input backend's error paths, on real paths: every way of not getting a keyboard is one
EngineError that names the device and says what to do (python-evdev itself is not replaced)."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

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
