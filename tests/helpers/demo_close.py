"""Ask an X window to close the way a window manager does: a WM_DELETE_WINDOW client message.

    python demo_close.py DISPLAY WINDOW_ID

Under a bare Xvfb there is no window manager (and this xdotool has no `windowquit`), so the tests send
the ICCCM message themselves, through libX11 via ctypes.
https://x.org/releases/X11R7.7/doc/xorg-docs/icccm/icccm.html#Window_Deletion
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

CLIENT_MESSAGE = 33  # X.h: ClientMessage


class XClientMessageEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", XClientMessageEvent), ("pad", ctypes.c_long * 24)]  # Xlib.h: long pad[24]


def main() -> int:
    display, window = sys.argv[1].encode(), int(sys.argv[2], 0)
    name = ctypes.util.find_library("X11")
    if name is None:
        print("libX11 not found", file=sys.stderr)
        return 1
    x = ctypes.CDLL(name)
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XInternAtom.restype = ctypes.c_ulong
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(XEvent)]
    x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x.XOpenDisplay(display)
    if not dpy:
        print(f"cannot open display {display.decode()}", file=sys.stderr)
        return 1
    ev = XEvent()
    ev.xclient.type = CLIENT_MESSAGE
    ev.xclient.window = window
    ev.xclient.message_type = x.XInternAtom(dpy, b"WM_PROTOCOLS", False)
    ev.xclient.format = 32
    ev.xclient.data[0] = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", False)
    ev.xclient.data[1] = 0  # CurrentTime
    ok = x.XSendEvent(dpy, window, False, 0, ctypes.byref(ev))
    x.XSync(dpy, False)
    x.XCloseDisplay(dpy)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
