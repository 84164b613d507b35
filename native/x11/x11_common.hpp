// Shared X11 plumbing for the grabber, the input listener and the XTest actuator. Internal: includes
// Xlib, so it must not leak into public headers (Xlib's macros clash with everything).
//
// Xlib's default handlers print and exit the process on any protocol or I/O error. We install, once
// per process, handlers that record the error for the thread that made the request (ErrorTrap) and
// mark the connection dead on I/O errors, so callers can throw a clear message instead.
#pragma once

#include <X11/Xlib.h>
#include <X11/Xutil.h>

#include <atomic>
#include <string>
#include <vector>

namespace engine::x11 {

// One connection, used by one thread at a time.
class Connection {
 public:
  explicit Connection(const std::string& display_name);  // "" means $DISPLAY
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Display* get() const { return dpy_; }
  ::Window root() const { return DefaultRootWindow(dpy_); }
  int screen_width() const { return DisplayWidth(dpy_, DefaultScreen(dpy_)); }
  int screen_height() const { return DisplayHeight(dpy_, DefaultScreen(dpy_)); }
  const std::string& name() const { return name_; }
  // The server connection broke (X server gone). Every later request is futile.
  bool broken() const { return broken_.load(std::memory_order_acquire); }
  // Throws CaptureError if broken().
  void check_alive() const;

 private:
  Display* dpy_ = nullptr;
  std::string name_;
  std::atomic<bool> broken_{false};
  friend void mark_broken(Display*, void*);
};

// The X server's process id, from the credentials of a local (Unix socket) connection; -1 for a remote
// display (TCP) or when the kernel does not say.
int server_pid(Display* dpy);

// Collects protocol errors raised by this thread's requests while in scope.
class ErrorTrap {
 public:
  // flush: XSync first so errors of earlier requests are not blamed on this scope (a round trip;
  // hot paths that only issue round-trip requests pass false).
  explicit ErrorTrap(Display* dpy, bool flush = true);
  ~ErrorTrap();
  ErrorTrap(const ErrorTrap&) = delete;
  ErrorTrap& operator=(const ErrorTrap&) = delete;
  // XSync, then the first error code seen since construction (0: none).
  int sync();
  int code() const { return code_; }
  std::string describe() const;  // e.g. "BadAccess (request 130.1)"

 private:
  friend int on_x_error(Display*, XErrorEvent*);
  Display* dpy_;
  ErrorTrap* outer_;
  int code_ = 0;
  int request_ = 0, minor_ = 0;
};

struct WindowInfo {
  unsigned long id;
  std::string title;
  int x, y, width, height;  // absolute (root) coordinates of the window's inside
};

std::string hex_id(unsigned long id);  // "0x1a00007", as xwininfo prints ids
std::string window_title(Display* dpy, ::Window w);
// Viewable windows that have a title, in stacking order.
std::vector<WindowInfo> list_windows(Display* dpy);
// Exact title first, then a unique case-insensitive substring; throws InvalidArgument listing the
// candidates otherwise.
::Window find_window(Display* dpy, const std::string& title);
// Why a window's geometry is asked for, which decides what a missing window means.
enum class WindowLookup {
  kOpening,    // the id came from the caller: a missing window is bad input (InvalidArgument)
  kFollowing,  // we were capturing it: a missing window went away (WindowLost)
};
// Absolute geometry of a window's inside. Throws (see WindowLookup) when no window has that id, and
// WindowLost when it is unmapped.
WindowInfo window_geometry(Display* dpy, ::Window w, WindowLookup lookup);

}  // namespace engine::x11
