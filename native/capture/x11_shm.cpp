#include "capture/x11_shm.hpp"

#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#include <X11/extensions/Xcomposite.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include <cstdio>
#include <cstring>

#include "common/error.hpp"
#include "x11/x11_common.hpp"

namespace engine {

namespace {
std::string rect_str(int x, int y, int w, int h) {
  return std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(w) + "," + std::to_string(h);
}
}  // namespace

struct X11Grabber::Impl {
  // What the pixels are read from (header comment): the root, the window's Composite pixmap, or the
  // window drawable.
  enum class Path { kScreen, kComposite, kDrawable };

  x11::Connection conn;
  ::Window window = 0;  // 0: capture the root window
  Path path = Path::kScreen;
  ::Pixmap pixmap = 0;      // the window's Composite pixmap (Path::kComposite)
  bool redirected = false;  // we asked Composite to redirect the window (undone on close)
  int border = 0;           // the window's border width: its pixmap starts at the border's outer edge
  std::array<int, 4> rel{0, 0, 0, 0};  // capture rectangle relative to the window (or the root)
  int win_x = 0, win_y = 0, win_w = 0, win_h = 0;  // window's inside, absolute
  Visual* visual = nullptr;  // of what is read: the window's own (it may differ from the screen's)
  int depth = 0;
  XImage* image = nullptr;
  XShmSegmentInfo shm{};
  bool use_shm = false;
  std::string reason;        // why MIT-SHM is not used
  std::string path_reason;   // why a window is not read through its Composite pixmap
  std::vector<char> plain;  // pixel buffer of the XGetImage path

  explicit Impl(const X11CaptureOptions& o) : conn(o.display) {
    Display* d = conn.get();
    if (o.window_id != 0 && !o.window_title.empty()) throw InvalidArgument("give a window id or a title, not both");
    if (o.window_id != 0) window = static_cast<::Window>(o.window_id);
    if (!o.window_title.empty()) window = x11::find_window(d, o.window_title);
    visual = DefaultVisual(d, DefaultScreen(d));
    depth = DefaultDepth(d, DefaultScreen(d));
    if (window != 0) {
      const x11::WindowInfo g = x11::window_geometry(d, window, x11::WindowLookup::kOpening);
      win_x = g.x, win_y = g.y, win_w = g.width, win_h = g.height;
      // ConfigureNotify tells us when it moves or resizes, DestroyNotify/UnmapNotify when it goes away.
      XSelectInput(d, window, StructureNotifyMask);
    } else {
      win_w = conn.screen_width(), win_h = conn.screen_height();
    }
    rel = o.has_region ? o.region : std::array<int, 4>{0, 0, win_w, win_h};
    const auto [rx, ry, rw, rh] = rel;
    if (rw <= 0 || rh <= 0) throw InvalidArgument("region " + rect_str(rx, ry, rw, rh) + " has no area");
    if (rx < 0 || ry < 0 || rx + rw > win_w || ry + rh > win_h) {
      throw InvalidArgument("region " + rect_str(rx, ry, rw, rh) + " is outside the " +
                            (window ? "window (" : "screen (") + std::to_string(win_w) + "x" +
                            std::to_string(win_h) + "); pick X,Y,W,H inside it");
    }
    if (window != 0) choose_window_path(o.window_source);
    if (path != Path::kComposite) check_on_screen(false);
    check_format();
    if (!o.use_shm) {
      reason = "MIT-SHM disabled by the caller";
    } else {
      setup_shm();
    }
    if (!use_shm) setup_plain();
  }

  ~Impl() {
    Display* d = conn.get();
    if (image != nullptr) {
      if (use_shm) {
        if (!conn.broken()) XShmDetach(d, &shm);
        image->data = nullptr;  // shared memory, not malloc'd: XDestroyImage must not free it
      } else {
        image->data = nullptr;  // owned by `plain`
      }
      XDestroyImage(image);
    }
    if (shm.shmaddr != nullptr && shm.shmaddr != reinterpret_cast<char*>(-1)) shmdt(shm.shmaddr);
    if (!conn.broken()) {
      x11::ErrorTrap trap(d);  // the window may be gone already (BadWindow): nothing to undo then
      if (pixmap != 0) XFreePixmap(d, pixmap);
      if (redirected) XCompositeUnredirectWindow(d, window, CompositeRedirectAutomatic);
      trap.sync();
    }
  }

  // Composite first (the window's own pixels, whatever covers it or however far off screen it is),
  // else the window drawable (its own pixels under XWayland; on plain X11 a covered part reads as what
  // covers it), with the reason kept. kScreen: the screen at the window's place (the old way).
  void choose_window_path(WindowSource want) {
    Display* d = conn.get();
    XWindowAttributes a{};
    if (XGetWindowAttributes(d, window, &a)) {
      visual = a.visual, depth = a.depth, border = a.border_width;
    }
    if (want == WindowSource::kScreen) {
      visual = DefaultVisual(d, DefaultScreen(d)), depth = DefaultDepth(d, DefaultScreen(d));
      path = Path::kScreen;
      path_reason = "the screen at the window's place was asked for";
      return;
    }
    if (want != WindowSource::kDrawable) {
      std::string why;
      if (setup_composite(why)) {
        path = Path::kComposite;
        return;
      }
      if (want == WindowSource::kComposite) {
        throw CaptureError("cannot read window " + x11::hex_id(window) + " through Composite: " + why);
      }
      path_reason = why + "; reading the window drawable (parts of it under other windows may read as them)";
    } else {
      path_reason = "the window drawable was asked for";
    }
    path = Path::kDrawable;
  }

  bool setup_composite(std::string& why) {
    Display* d = conn.get();
    int event_base = 0, error_base = 0, major = 0, minor = 2;
    if (!XCompositeQueryExtension(d, &event_base, &error_base)) {
      why = "the X server has no Composite extension";
      return false;
    }
    // NameWindowPixmap came with Composite 0.2 (Composite protocol spec, section 8).
    if (!XCompositeQueryVersion(d, &major, &minor) || (major == 0 && minor < 2)) {
      why = "the X server's Composite " + std::to_string(major) + "." + std::to_string(minor) +
            " cannot name a window's pixmap (needs 0.2)";
      return false;
    }
    {
      x11::ErrorTrap trap(d);
      // Automatic: the server keeps drawing the window on screen as before, so the desktop looks the
      // same; several clients may redirect one window this way (only manual redirection is exclusive).
      XCompositeRedirectWindow(d, window, CompositeRedirectAutomatic);
      if (trap.sync() != 0) {
        why = "XCompositeRedirectWindow failed: " + trap.describe();
        return false;
      }
    }
    redirected = true;
    if (!name_pixmap(why)) {
      x11::ErrorTrap trap(d);
      XCompositeUnredirectWindow(d, window, CompositeRedirectAutomatic);
      trap.sync();
      redirected = false;
      return false;
    }
    return true;
  }

  // The pixmap named for a window is replaced by a new one when the window is resized or mapped again;
  // a name holds the old one, so name it again then.
  bool name_pixmap(std::string& why) {
    Display* d = conn.get();
    x11::ErrorTrap trap(d);
    if (pixmap != 0) XFreePixmap(d, pixmap);
    pixmap = XCompositeNameWindowPixmap(d, window);
    if (trap.sync() != 0) {
      pixmap = 0;
      why = "XCompositeNameWindowPixmap failed: " + trap.describe();
      return false;
    }
    return true;
  }

  void check_format() const {
    if (depth != 24 && depth != 32) throw_format();
    if (visual->red_mask != 0xff0000 || visual->green_mask != 0xff00 || visual->blue_mask != 0xff) throw_format();
  }

  [[noreturn]] void throw_format() const {
    // The text before ';' names the format; engine.capture quotes it when mss refuses it too.
    char masks[96];
    std::snprintf(masks, sizeof masks, "red/green/blue masks 0x%lx/0x%lx/0x%lx", visual->red_mask,
                  visual->green_mask, visual->blue_mask);
    throw CaptureError("unsupported X pixel format (depth " + std::to_string(depth) + ", " + masks +
                       "); the engine reads 24/32-bit BGRX. Run the X server at depth 24");
  }

  std::array<int, 4> abs_rect() const { return {win_x + rel[0], win_y + rel[1], rel[2], rel[3]}; }

  // Where the capture rectangle starts in the drawable that is read.
  std::array<int, 2> read_origin() const {
    switch (path) {
      case Path::kComposite: return {rel[0] + border, rel[1] + border};
      case Path::kDrawable: return {rel[0], rel[1]};
      case Path::kScreen: break;
    }
    const auto r = abs_rect();
    return {r[0], r[1]};
  }

  ::Drawable drawable() const {
    switch (path) {
      case Path::kComposite: return pixmap;
      case Path::kDrawable: return window;
      case Path::kScreen: break;
    }
    return conn.root();
  }

  // XShmGetImage/XGetSubImage of the root, or of a window drawable, fail with BadMatch on any pixel
  // outside the screen (a window's pixmap has no such limit). capturing: the area was fine at open and
  // the window moved since, which is no bad input from the caller but a capture that cannot go on
  // (CaptureError, so a capture loop stops with this message).
  void check_on_screen(bool capturing) const {
    const auto [x, y, w, h] = abs_rect();
    const int sw = conn.screen_width(), sh = conn.screen_height();
    if (x >= 0 && y >= 0 && x + w <= sw && y + h <= sh) return;
    const std::string screen = std::to_string(sw) + "x" + std::to_string(sh);
    if (capturing) {
      throw CaptureError("the captured window moved partly off screen (capture area " + rect_str(x, y, w, h) +
                         " on a " + screen + " screen); move it back fully on screen");
    }
    throw InvalidArgument("capture area " + rect_str(x, y, w, h) + " is outside the screen (" + screen +
                          "); move the window fully on screen or pick a region inside it");
  }

  void setup_shm() {
    Display* d = conn.get();
    int major = 0, minor = 0;
    Bool pixmaps = False;
    if (!XShmQueryExtension(d) || !XShmQueryVersion(d, &major, &minor, &pixmaps)) {
      reason = "the X server has no MIT-SHM extension";
      return;
    }
    image = XShmCreateImage(d, visual, static_cast<unsigned>(depth), ZPixmap, nullptr, &shm,
                            static_cast<unsigned>(rel[2]), static_cast<unsigned>(rel[3]));
    if (image == nullptr) {
      reason = "XShmCreateImage failed";
      return;
    }
    shm.shmid = shmget(IPC_PRIVATE, static_cast<std::size_t>(image->bytes_per_line) * image->height, IPC_CREAT | 0600);
    if (shm.shmid < 0) {
      reason = std::string("shmget failed: ") + std::strerror(errno);
      drop_image();
      return;
    }
    shm.shmaddr = image->data = static_cast<char*>(shmat(shm.shmid, nullptr, 0));
    if (shm.shmaddr == reinterpret_cast<char*>(-1)) {
      reason = std::string("shmat failed: ") + std::strerror(errno);
      shmctl(shm.shmid, IPC_RMID, nullptr);
      shm.shmaddr = nullptr;
      drop_image();
      return;
    }
    shm.readOnly = False;
    x11::ErrorTrap trap(d);
    const Bool attached = XShmAttach(d, &shm);
    const int err = trap.sync();
    // Mark the segment for removal now: it disappears once both sides detach, even after a crash.
    shmctl(shm.shmid, IPC_RMID, nullptr);
    if (!attached || err != 0) {
      // Typical over TCP or across containers: the server cannot map our segment.
      reason = "XShmAttach failed: " + (err ? trap.describe() : std::string("refused")) +
               " (the X server cannot share memory with us, e.g. DISPLAY over TCP)";
      shmdt(shm.shmaddr);
      shm.shmaddr = nullptr;
      drop_image();
      return;
    }
    use_shm = true;
  }

  void drop_image() {
    if (image != nullptr) {
      image->data = nullptr;
      XDestroyImage(image);
      image = nullptr;
    }
  }

  void setup_plain() {
    Display* d = conn.get();
    const int bpl = rel[2] * 4;
    plain.assign(static_cast<std::size_t>(bpl) * rel[3], 0);
    image = XCreateImage(d, visual, static_cast<unsigned>(depth), ZPixmap, 0, plain.data(),
                         static_cast<unsigned>(rel[2]), static_cast<unsigned>(rel[3]), 32, bpl);
    if (image == nullptr) throw CaptureError("XCreateImage failed for a " + std::to_string(rel[2]) + "x" + std::to_string(rel[3]) + " image");
  }

  // Apply queued structure events of the captured window: follow moves and resizes, notice its end.
  void follow_window() {
    Display* d = conn.get();
    bool configured = false, resized = false;
    while (XPending(d) > 0) {
      XEvent ev;
      XNextEvent(d, &ev);
      if (ev.type == DestroyNotify && ev.xdestroywindow.window == window) {
        throw WindowLost("the captured window " + x11::hex_id(window) + " was closed");
      }
      if (ev.type == UnmapNotify && ev.xunmap.window == window) {
        throw WindowLost("the captured window " + x11::hex_id(window) + " was hidden (unmapped)");
      }
      if (ev.type == ConfigureNotify && ev.xconfigure.window == window) {
        configured = true;
        resized |= ev.xconfigure.width != win_w || ev.xconfigure.height != win_h ||
                   ev.xconfigure.border_width != border;
        border = ev.xconfigure.border_width;
      }
    }
    if (!configured) return;
    // Coordinates in ConfigureNotify are relative to the parent (a window manager's frame), so ask
    // for absolute ones.
    const x11::WindowInfo g = x11::window_geometry(d, window, x11::WindowLookup::kFollowing);
    win_x = g.x, win_y = g.y, win_w = g.width, win_h = g.height;
    if (rel[0] + rel[2] > g.width || rel[1] + rel[3] > g.height) {
      throw WindowLost("the captured window shrank to " + std::to_string(g.width) + "x" +
                       std::to_string(g.height) + ", smaller than the capture region");
    }
    if (resized && path == Path::kComposite) rename_or_throw();
  }

  void rename_or_throw() {
    std::string why;
    if (!name_pixmap(why)) throw CaptureError("the captured window's pixmap cannot be read: " + why);
  }

  // One request for the capture rectangle into `image`; the X error code (-1: no image, 0: fine), and
  // its description in `what`.
  int read_once(std::string& what) {
    Display* d = conn.get();
    const auto [ox, oy] = read_origin();
    x11::ErrorTrap trap(d, false);  // both requests below are round trips
    Bool ok = False;
    if (use_shm) {
      ok = XShmGetImage(d, drawable(), image, ox, oy, AllPlanes);
    } else {
      ok = XGetSubImage(d, drawable(), ox, oy, static_cast<unsigned>(rel[2]), static_cast<unsigned>(rel[3]),
                        AllPlanes, ZPixmap, image, 0, 0) != nullptr;
    }
    const int err = ok ? trap.code() : (trap.sync() ? trap.code() : -1);
    if (err > 0) what = trap.describe();
    if (err < 0) what = "no image";
    return err;
  }

  BgraView grab() {
    conn.check_alive();
    if (window != 0) {
      follow_window();
      // Every grab, not only after a move: a caller that keeps grabbing after this error gets it
      // again (not a BadMatch), and grabbing resumes once the window is back on screen.
      if (path != Path::kComposite) check_on_screen(true);
    }
    std::string what;
    int err = read_once(what);
    if (err != 0 && path == Path::kComposite) {
      // A resize between our last look at the event queue and the read leaves the named pixmap
      // stale (BadMatch): name it again, once.
      conn.check_alive();
      follow_window();
      rename_or_throw();
      err = read_once(what);
    }
    if (err != 0) {
      conn.check_alive();
      const auto [x, y, w, h] = abs_rect();
      throw CaptureError("grabbing " + rect_str(x, y, w, h) + " failed: " + what);
    }
    return BgraView{reinterpret_cast<const std::uint8_t*>(image->data), rel[2], rel[3], image->bytes_per_line};
  }

  std::string read_from() const {
    switch (path) {
      case Path::kComposite: return "composite";
      case Path::kDrawable: return "window";
      case Path::kScreen: break;
    }
    return "screen";
  }
};

X11Grabber::X11Grabber(const X11CaptureOptions& options) : impl_(std::make_unique<Impl>(options)) {}
X11Grabber::~X11Grabber() = default;
BgraView X11Grabber::grab() { return impl_->grab(); }
int X11Grabber::server_pid() const { return x11::server_pid(impl_->conn.get()); }
int X11Grabber::width() const { return impl_->rel[2]; }
int X11Grabber::height() const { return impl_->rel[3]; }
std::array<int, 4> X11Grabber::rect() const { return impl_->abs_rect(); }
std::string X11Grabber::backend() const { return impl_->use_shm ? "xshm" : "xgetimage"; }
std::string X11Grabber::fallback_reason() const {
  if (impl_->reason.empty() || impl_->path_reason.empty()) return impl_->reason + impl_->path_reason;
  return impl_->reason + "; " + impl_->path_reason;
}
std::string X11Grabber::read_from() const { return impl_->read_from(); }
std::uint64_t X11Grabber::window_id() const { return impl_->window; }
std::array<int, 2> X11Grabber::screen_size() const {
  return {impl_->conn.screen_width(), impl_->conn.screen_height()};
}

std::vector<X11WindowInfo> x11_list_windows(const std::string& display) {
  x11::Connection conn(display);
  std::vector<X11WindowInfo> out;
  for (auto& w : x11::list_windows(conn.get())) out.push_back({w.id, w.title, w.x, w.y, w.width, w.height});
  return out;
}

std::array<int, 2> x11_screen_size(const std::string& display) {
  x11::Connection conn(display);
  return {conn.screen_width(), conn.screen_height()};
}

}  // namespace engine
