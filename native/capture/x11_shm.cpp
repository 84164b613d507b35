#include "capture/x11_shm.hpp"

#include <X11/Xlib-xcb.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/XShm.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <xcb/shm.h>

#include <algorithm>
#include <cstdlib>
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
  struct Strip {
    xcb_shm_get_image_cookie_t cookie;
    bool requested;
    int out_begin, out_end;
  };
  std::vector<Strip> strips;  // reused by grab_convert

  explicit Impl(const X11CaptureOptions& o) : conn(o.display) {
    Display* d = conn.get();
    if (o.window_id != 0 && !o.window_title.empty()) throw InvalidArgument("give a window id or a title, not both");
    if (o.window_id != 0) window = static_cast<::Window>(o.window_id);
    if (!o.window_title.empty()) window = x11::find_window(d, o.window_title);
    if (window != 0) {
      const x11::WindowInfo g = x11::window_geometry(d, window);
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
    check_on_screen();
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
      throw CaptureError("unsupported X pixel format (depth " + std::to_string(depth) +
                         "); the engine reads 24/32-bit BGRX. Run the X server at depth 24");
    }
  }

  std::array<int, 4> abs_rect() const { return {win_x + rel[0], win_y + rel[1], rel[2], rel[3]}; }

  void check_on_screen() const {
    const auto [x, y, w, h] = abs_rect();
    const int sw = conn.screen_width(), sh = conn.screen_height();
    if (x < 0 || y < 0 || x + w > sw || y + h > sh) {
      throw InvalidArgument("capture area " + rect_str(x, y, w, h) + " is outside the screen (" + std::to_string(sw) +
                            "x" + std::to_string(sh) + "); move the window fully on screen or pick a region inside it");
    }
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
      const x11::WindowInfo g = x11::window_geometry(d, window);
      win_x = g.x, win_y = g.y;
      if (rel[0] + rel[2] > g.width || rel[1] + rel[3] > g.height) {
        throw WindowLost("the captured window shrank to " + std::to_string(g.width) + "x" +
                         std::to_string(g.height) + ", smaller than the capture region");
      }
      check_on_screen();
    }
  }

  BgraView grab() {
    conn.check_alive();
    if (window != 0) follow_window();
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

  // About 256 KiB of pixels per strip, at most 16 strips, never more than the output has rows.
  static int strip_count(int w, int h, int out_h) {
    const std::size_t bytes = static_cast<std::size_t>(w) * h * 4;
    const int n = static_cast<int>(std::clamp<std::size_t>(bytes / (256 * 1024), 1, 16));
    return std::min(n, out_h);
  }

  // MIT-SHM in strips, pipelined: every strip's ShmGetImage goes out at once (XCB on Xlib's own
  // connection), and each strip is converted as soon as its reply says the server has written it,
  // while the server copies the next ones. Measured on Xvfb, 2 cores: 1080p -> 160x120 gray 1.1 ->
  // 0.75 ms, 800x600 0.43 -> 0.33 ms per frame. Same bytes as grab() then run().
  std::int64_t grab_convert(ConvertResize& conv, const PixelsOut& dst) {
    if (!use_shm || image->bytes_per_line != rel[2] * 4 || conv.src_width() != rel[2] ||
        conv.src_height() != rel[3]) {
      const BgraView src = grab();  // XGetImage path, or a size mismatch that run() reports
      const std::int64_t t0 = monotonic_ns();
      conv.run(src, dst);
      return monotonic_ns() - t0;
    }
    conn.check_alive();
    if (window != 0) follow_window();
    Display* d = conn.get();
    xcb_connection_t* c = XGetXCBConnection(d);
    const auto [x, y, w, h] = abs_rect();
    const std::size_t stride = static_cast<std::size_t>(w) * 4;
    const int out_h = conv.dst_height();
    const int n = strip_count(w, h, out_h);
    strips.resize(static_cast<std::size_t>(n));
    int rows_done = 0;
    for (int k = 0; k < n; ++k) {
      Strip& s = strips[static_cast<std::size_t>(k)];
      s.out_begin = k * out_h / n;
      s.out_end = (k + 1) * out_h / n;
      const int rows_end = k + 1 == n ? h : conv.src_rows_for(s.out_end);
      s.requested = rows_end > rows_done;
      if (s.requested) {
        s.cookie = xcb_shm_get_image(c, conn.root(), static_cast<std::int16_t>(x),
                                     static_cast<std::int16_t>(y + rows_done), static_cast<std::uint16_t>(w),
                                     static_cast<std::uint16_t>(rows_end - rows_done), ~0u,
                                     XCB_IMAGE_FORMAT_Z_PIXMAP, static_cast<xcb_shm_seg_t>(shm.shmseg),
                                     static_cast<std::uint32_t>(rows_done * stride));
        rows_done = rows_end;
      }
    }
    xcb_flush(c);
    const BgraView src{reinterpret_cast<const std::uint8_t*>(image->data), w, h,
                       static_cast<std::ptrdiff_t>(stride)};
    std::int64_t conv_ns = 0;
    for (int k = 0; k < n; ++k) {
      const Strip& s = strips[static_cast<std::size_t>(k)];
      if (s.requested) {
        xcb_generic_error_t* err = nullptr;
        xcb_shm_get_image_reply_t* reply = xcb_shm_get_image_reply(c, s.cookie, &err);
        std::free(reply);
        if (reply == nullptr || err != nullptr) {
          const int code = err != nullptr ? err->error_code : 0;
          std::free(err);
          for (int j = k + 1; j < n; ++j) {
            if (strips[static_cast<std::size_t>(j)].requested) {
              xcb_discard_reply(c, strips[static_cast<std::size_t>(j)].cookie.sequence);
            }
          }
          conn.check_alive();
          if (xcb_connection_has_error(c) != 0) throw CaptureError("the X server connection was lost");
          char text[256] = "no image";
          if (code != 0) XGetErrorText(d, code, text, sizeof text);
          throw CaptureError("grabbing " + rect_str(x, y, w, h) + " failed: " + text);
        }
      }
      const std::int64_t t0 = monotonic_ns();
      conv.run_rows(src, dst, s.out_begin, s.out_end);
      conv_ns += monotonic_ns() - t0;
    }
    return conv_ns;
  }
};

X11Grabber::X11Grabber(const X11CaptureOptions& options) : impl_(std::make_unique<Impl>(options)) {}
X11Grabber::~X11Grabber() = default;
BgraView X11Grabber::grab() { return impl_->grab(); }
std::int64_t X11Grabber::grab_convert(ConvertResize& conv, const PixelsOut& dst) {
  return impl_->grab_convert(conv, dst);
}
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
