#include "capture/x11_shm.hpp"

#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
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
  x11::Connection conn;
  ::Window window = 0;  // 0: capture the root window
  std::array<int, 4> rel{0, 0, 0, 0};  // capture rectangle relative to the window (or the root)
  int win_x = 0, win_y = 0, win_w = 0, win_h = 0;  // window's inside, absolute
  XImage* image = nullptr;
  XShmSegmentInfo shm{};
  bool use_shm = false;
  std::string reason;
  std::vector<char> plain;  // pixel buffer of the XGetImage path

  explicit Impl(const X11CaptureOptions& o) : conn(o.display) {
    Display* d = conn.get();
    if (o.window_id != 0 && !o.window_title.empty()) throw InvalidArgument("give a window id or a title, not both");
    if (o.window_id != 0) window = static_cast<::Window>(o.window_id);
    if (!o.window_title.empty()) window = x11::find_window(d, o.window_title);
    if (window != 0) {
      const x11::WindowInfo g = x11::window_geometry(d, window, x11::WindowLookup::kOpening);
      win_x = g.x, win_y = g.y, win_w = g.width, win_h = g.height;
      // ConfigureNotify tells us when it moves, DestroyNotify/UnmapNotify when it goes away.
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
    check_on_screen(false);
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
    if (!conn.broken()) XSync(d, False);
  }

  void check_format() const {
    Display* d = conn.get();
    Visual* v = DefaultVisual(d, DefaultScreen(d));
    const int depth = DefaultDepth(d, DefaultScreen(d));
    if ((depth != 24 && depth != 32) || v->red_mask != 0xff0000 || v->green_mask != 0xff00 || v->blue_mask != 0xff) {
      // The text before ';' names the format; engine.capture quotes it when mss refuses it too.
      char masks[96];
      std::snprintf(masks, sizeof masks, "red/green/blue masks 0x%lx/0x%lx/0x%lx", v->red_mask, v->green_mask,
                    v->blue_mask);
      throw CaptureError("unsupported X pixel format (depth " + std::to_string(depth) + ", " + masks +
                         "); the engine reads 24/32-bit BGRX. Run the X server at depth 24");
    }
  }

  std::array<int, 4> abs_rect() const { return {win_x + rel[0], win_y + rel[1], rel[2], rel[3]}; }

  // XShmGetImage/XGetSubImage of the root fail with BadMatch on any pixel outside the screen.
  // capturing: the area was fine at open and the window moved since, which is no bad input from the
  // caller but a capture that cannot go on (CaptureError, so a capture loop stops with this message).
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
    const int screen = DefaultScreen(d);
    image = XShmCreateImage(d, DefaultVisual(d, screen), DefaultDepth(d, screen), ZPixmap, nullptr, &shm,
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
    const int screen = DefaultScreen(d);
    const int bpl = rel[2] * 4;
    plain.assign(static_cast<std::size_t>(bpl) * rel[3], 0);
    image = XCreateImage(d, DefaultVisual(d, screen), DefaultDepth(d, screen), ZPixmap, 0, plain.data(),
                         static_cast<unsigned>(rel[2]), static_cast<unsigned>(rel[3]), 32, bpl);
    if (image == nullptr) throw CaptureError("XCreateImage failed for a " + std::to_string(rel[2]) + "x" + std::to_string(rel[3]) + " image");
  }

  // Apply queued structure events of the captured window: follow moves, notice its end.
  void follow_window() {
    Display* d = conn.get();
    bool moved = false;
    while (XPending(d) > 0) {
      XEvent ev;
      XNextEvent(d, &ev);
      if (ev.type == DestroyNotify && ev.xdestroywindow.window == window) {
        throw WindowLost("the captured window " + x11::hex_id(window) + " was closed");
      }
      if (ev.type == UnmapNotify && ev.xunmap.window == window) {
        throw WindowLost("the captured window " + x11::hex_id(window) + " was hidden (unmapped)");
      }
      if (ev.type == ConfigureNotify && ev.xconfigure.window == window) moved = true;
    }
    if (moved) {
      // Coordinates in ConfigureNotify are relative to the parent (a window manager's frame), so ask
      // for absolute ones.
      const x11::WindowInfo g = x11::window_geometry(d, window, x11::WindowLookup::kFollowing);
      win_x = g.x, win_y = g.y;
      if (rel[0] + rel[2] > g.width || rel[1] + rel[3] > g.height) {
        throw WindowLost("the captured window shrank to " + std::to_string(g.width) + "x" +
                         std::to_string(g.height) + ", smaller than the capture region");
      }
    }
  }

  BgraView grab() {
    conn.check_alive();
    if (window != 0) {
      follow_window();
      // Every grab, not only after a move: a caller that keeps grabbing after this error gets it
      // again (not a BadMatch), and grabbing resumes once the window is back on screen.
      check_on_screen(true);
    }
    Display* d = conn.get();
    const auto [x, y, w, h] = abs_rect();
    int err = 0;
    {
      x11::ErrorTrap trap(d, false);  // both requests below are round trips
      Bool ok = False;
      if (use_shm) {
        ok = XShmGetImage(d, conn.root(), image, x, y, AllPlanes);
      } else {
        ok = XGetSubImage(d, conn.root(), x, y, static_cast<unsigned>(w), static_cast<unsigned>(h), AllPlanes,
                          ZPixmap, image, 0, 0) != nullptr;
      }
      err = ok ? trap.code() : (trap.sync() ? trap.code() : -1);
      if (err != 0) {
        conn.check_alive();
        throw CaptureError("grabbing " + rect_str(x, y, w, h) + " failed: " +
                           (err > 0 ? trap.describe() : std::string("no image")));
      }
    }
    return BgraView{reinterpret_cast<const std::uint8_t*>(image->data), w, h, image->bytes_per_line};
  }
};

X11Grabber::X11Grabber(const X11CaptureOptions& options) : impl_(std::make_unique<Impl>(options)) {}
X11Grabber::~X11Grabber() = default;
BgraView X11Grabber::grab() { return impl_->grab(); }
int X11Grabber::width() const { return impl_->rel[2]; }
int X11Grabber::height() const { return impl_->rel[3]; }
std::array<int, 4> X11Grabber::rect() const { return impl_->abs_rect(); }
std::string X11Grabber::backend() const { return impl_->use_shm ? "xshm" : "xgetimage"; }
std::string X11Grabber::fallback_reason() const { return impl_->reason; }
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
