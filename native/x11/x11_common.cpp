#include "x11/x11_common.hpp"

#include <X11/Xatom.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "capture/window_match.hpp"
#include "common/error.hpp"

namespace engine::x11 {

namespace {
thread_local ErrorTrap* t_trap = nullptr;
std::once_flag g_init;
}  // namespace

int on_x_error(Display* dpy, XErrorEvent* ev) {
  (void)dpy;
  // Errors outside a trap (asynchronous leftovers) are ignored rather than killing the process.
  if (t_trap != nullptr && t_trap->code_ == 0) {
    t_trap->code_ = ev->error_code;
    t_trap->request_ = ev->request_code;
    t_trap->minor_ = ev->minor_code;
  }
  return 0;
}

void mark_broken(Display* dpy, void* user) {
  (void)dpy;
  static_cast<Connection*>(user)->broken_.store(true, std::memory_order_release);
}

namespace {
#if defined(ENGINE_HAVE_XIO_EXIT_HANDLER)
void io_exit_handler(Display* dpy, void* user) { mark_broken(dpy, user); }
#endif
int io_error_handler(Display*) { return 0; }
}  // namespace

std::string hex_id(unsigned long id) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%lx", id);
  return b;
}

Connection::Connection(const std::string& display_name) {
  std::call_once(g_init, [] {
    XInitThreads();  // several threads each own a connection; Xlib's globals must be locked
    XSetErrorHandler(on_x_error);
    XSetIOErrorHandler(io_error_handler);
  });
  const char* env = std::getenv("DISPLAY");
  name_ = !display_name.empty() ? display_name : (env ? env : "");
  if (name_.empty()) {
    throw CaptureError(
        "no X display: DISPLAY is not set. Run inside a desktop session, pass display=':N', or start a "
        "virtual one (Xvfb :99 & export DISPLAY=:99)");
  }
  dpy_ = XOpenDisplay(name_.c_str());
  if (dpy_ == nullptr) {
    throw CaptureError("cannot open X display '" + name_ +
                       "': no X server answers there (is it running, and is DISPLAY right?)");
  }
#if defined(ENGINE_HAVE_XIO_EXIT_HANDLER)
  // libX11 >= 1.7: return from an I/O error instead of exit().
  XSetIOErrorExitHandler(dpy_, io_exit_handler, this);
#endif
}

Connection::~Connection() {
  if (dpy_ != nullptr) XCloseDisplay(dpy_);
}

void Connection::check_alive() const {
  if (broken()) throw CaptureError("lost the connection to X display '" + name_ + "' (did the X server exit?)");
}

ErrorTrap::ErrorTrap(Display* dpy, bool flush) : dpy_(dpy), outer_(t_trap) {
  if (flush) XSync(dpy_, False);
  t_trap = this;
}

ErrorTrap::~ErrorTrap() { t_trap = outer_; }

int ErrorTrap::sync() {
  XSync(dpy_, False);
  return code_;
}

std::string ErrorTrap::describe() const {
  char text[128] = {0};
  XGetErrorText(dpy_, code_, text, sizeof(text) - 1);
  return std::string(text) + " (request " + std::to_string(request_) + "." + std::to_string(minor_) + ")";
}

std::string window_title(Display* dpy, ::Window w) {
  // EWMH _NET_WM_NAME (UTF-8) first, then ICCCM WM_NAME.
  const Atom net_wm_name = XInternAtom(dpy, "_NET_WM_NAME", False);
  const Atom utf8 = XInternAtom(dpy, "UTF8_STRING", False);
  Atom type = 0;
  int format = 0;
  unsigned long n = 0, after = 0;
  unsigned char* data = nullptr;
  std::string title;
  if (XGetWindowProperty(dpy, w, net_wm_name, 0, 1024, False, utf8, &type, &format, &n, &after, &data) ==
          Success &&
      data != nullptr) {
    if (type == utf8 && format == 8) title.assign(reinterpret_cast<char*>(data), n);
    XFree(data);
  }
  if (title.empty()) {
    char* name = nullptr;
    if (XFetchName(dpy, w, &name) && name != nullptr) {
      title = name;
      XFree(name);
    }
  }
  return title;
}

WindowInfo window_geometry(Display* dpy, ::Window w, WindowLookup lookup) {
  ErrorTrap trap(dpy);
  XWindowAttributes a{};
  const Status ok = XGetWindowAttributes(dpy, w, &a);
  int x = 0, y = 0;
  ::Window child = 0;
  const Bool tr = ok ? XTranslateCoordinates(dpy, w, DefaultRootWindow(dpy), 0, 0, &x, &y, &child) : False;
  if (!ok || !tr || trap.sync() != 0) {
    // X cannot tell "never existed" from "destroyed earlier" (both are BadWindow); the caller's
    // context can: an id handed to us at open time that fails never named a window we saw.
    if (lookup == WindowLookup::kOpening) {
      throw InvalidArgument("no window with id " + hex_id(w) + " on X display '" + DisplayString(dpy) +
                            "'; list the windows with `xwininfo -root -tree` or pass a window title");
    }
    throw WindowLost("the captured window " + hex_id(w) + " no longer exists");
  }
  if (a.map_state != IsViewable) throw WindowLost("window '" + window_title(dpy, w) + "' is not visible (unmapped)");
  return WindowInfo{static_cast<unsigned long>(w), window_title(dpy, w), x, y, a.width, a.height};
}

std::vector<WindowInfo> list_windows(Display* dpy) {
  std::vector<WindowInfo> out;
  ErrorTrap trap(dpy);  // windows may vanish while we walk the tree
  std::vector<::Window> stack{DefaultRootWindow(dpy)};
  while (!stack.empty()) {
    const ::Window w = stack.back();
    stack.pop_back();
    ::Window root = 0, parent = 0, *children = nullptr;
    unsigned int n = 0;
    if (!XQueryTree(dpy, w, &root, &parent, &children, &n)) continue;
    for (unsigned int i = 0; i < n; ++i) stack.push_back(children[i]);
    if (children) XFree(children);
    if (w == DefaultRootWindow(dpy)) continue;
    XWindowAttributes a{};
    if (!XGetWindowAttributes(dpy, w, &a) || a.map_state != IsViewable) continue;
    std::string title = window_title(dpy, w);
    if (title.empty()) continue;
    int x = 0, y = 0;
    ::Window child = 0;
    XTranslateCoordinates(dpy, w, root, 0, 0, &x, &y, &child);
    out.push_back(WindowInfo{static_cast<unsigned long>(w), std::move(title), x, y, a.width, a.height});
  }
  return out;
}

::Window find_window(Display* dpy, const std::string& title) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  return static_cast<::Window>(match_window_title(list_windows(dpy), title, lower).id);
}

int server_pid(Display* dpy) {
  ucred cred{};
  socklen_t len = sizeof cred;
  sockaddr_storage addr{};
  socklen_t alen = sizeof addr;
  const int fd = ConnectionNumber(dpy);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0 || addr.ss_family != AF_UNIX) return -1;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid <= 0) return -1;
  return static_cast<int>(cred.pid);
}

}  // namespace engine::x11
