#include "input/x11_listener.hpp"

#include <X11/Xlib.h>
#include <X11/extensions/XI2proto.h>
#include <X11/extensions/XInput2.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <xcb/xcb.h>
#include <xcb/xcbext.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "input/action_table.hpp"
#include "x11/x11_common.hpp"

namespace engine {

namespace {

// The axes X11 can report, by what produces them.
enum MouseAxis { kDx, kDy, kWheel, kX, kY, kMouseAxes };
constexpr const char* kMouseAxisNames[kMouseAxes] = {"mouse_dx", "mouse_dy", "wheel", "mouse_x", "mouse_y"};
// While a motion axis streams events that carry usable server times, the consumer reads them when it
// takes them (collect()); the thread reads only when nobody has for this long: a bound on how long an
// event waits (the X server buffers them meanwhile) for a consumer that polls rarely. The recorder
// collects before it labels, so its holdback does not depend on this.
constexpr int kMotionBatchMs = 250;
// Streaming lasts while some read found events this recently; after that the thread blocks on the
// socket again, so an idle mouse costs no wake-up.
constexpr std::int64_t kStreamingNs = 1000000000;

// The events are read on a second connection (Xlib's stays for the queries: XIQueryDevice,
// XIQueryPointer). Xlib turns every XI2 event into a cookie (a malloc'd copy of the wire event, then
// XGetEventData's converted XIRawEvent with its own arrays, each in a locked display), which was most of
// a 1000 Hz mouse's cost. XCB opens the connection and sends the two requests; after them its socket is
// read here, into one buffer, and each wire event parsed in place (XI2proto.h's xXIRawEvent, then the
// valuator mask, then one FP3232 per set bit of the transformed values, then one per set bit of the raw
// values): XCB would malloc every event of a 16 KB block before handing out the first, a quarter of
// what reading a 1000 Hz mouse cost once the rest was gone.
// libxcb-xinput is not needed for two requests: they are built here from XI2proto.h.
xcb_extension_t xi_extension = {"XInputExtension", 0};

// Every X event, error and reply starts with 32 bytes; a reply and a generic event (XI2's) are followed
// by 4 x the CARD32 at byte 4 more.
constexpr std::size_t kWireEventBytes = 32;
constexpr std::uint8_t kWireReply = 1;
constexpr std::size_t kMaxWireBytes = std::size_t{1} << 24;  // a bound no event nears (XI2 raw: ~100 bytes)

std::size_t wire_size(const std::uint8_t* head) {
  const std::uint8_t type = head[0] & 0x7f;
  if (type != kWireReply && type != XCB_GE_GENERIC) return kWireEventBytes;
  std::uint32_t words = 0;
  std::memcpy(&words, head + 4, sizeof words);
  return kWireEventBytes + 4 * static_cast<std::size_t>(words);
}

// Send an XInput request (body: its wire struct, reqType/ReqType/length filled in by XCB).
unsigned int xi_request(xcb_connection_t* c, std::uint8_t minor, const void* body, std::size_t size, bool isvoid) {
  iovec parts[3];  // XCB needs two free slots before the data
  parts[2].iov_base = const_cast<void*>(body);
  parts[2].iov_len = size;
  xcb_protocol_request_t req = {1, &xi_extension, minor, static_cast<std::uint8_t>(isvoid ? 1 : 0)};
  return xcb_send_request(c, XCB_REQUEST_CHECKED, parts + 2, &req);
}

// A raw event as it came off the wire: the 32-byte header, then the rest of a generic event.
struct WireRaw {
  const xXIRawEvent* head;
  const std::uint32_t* mask;
  const std::int32_t* fp;  // FP3232 pairs: the transformed values, then the raw ones
  int bits;                // set bits in the mask = values in each of the two lists
  int mask_bits;
};

WireRaw wire_raw(const std::uint8_t* e) {
  WireRaw w;
  w.head = reinterpret_cast<const xXIRawEvent*>(e);
  w.mask = reinterpret_cast<const std::uint32_t*>(e + kWireEventBytes);
  const int words = w.head->valuators_len;
  // The event's length (4-byte units after the first 32 bytes) bounds the mask and values.
  const int avail = static_cast<int>(w.head->length);
  w.mask_bits = (words <= avail ? words : avail) * 32;
  w.bits = 0;
  for (int i = 0; i < w.mask_bits / 32; ++i) w.bits += __builtin_popcount(w.mask[i]);
  if (words + 4 * w.bits > avail) w.bits = w.mask_bits = 0;  // malformed: no valuators
  w.fp = reinterpret_cast<const std::int32_t*>(w.mask + words);
  return w;
}

// The raw value of valuator v in a raw event (its values are packed: one per set mask bit).
bool raw_valuator(const WireRaw& r, int v, double* out) {
  if (v >= r.mask_bits || !((r.mask[v / 32] >> (v % 32)) & 1u)) return false;
  int idx = 0;
  for (int i = 0; i < v; ++i) idx += (r.mask[i / 32] >> (i % 32)) & 1u;
  const std::int32_t* fp = r.fp + 2 * (r.bits + idx);  // the raw list follows the transformed one
  *out = static_cast<double>(fp[0]) + static_cast<double>(static_cast<std::uint32_t>(fp[1])) / 4294967296.0;
  return true;
}

}  // namespace

struct X11InputListener::Impl {
  x11::Connection conn;  // queries (key map, devices, pointer position)
  xcb_connection_t* xc = nullptr;  // the events (see xi_request): set up by XCB, then read by next_event()
  // xc's socket once set up; in[in_off, in_len) is read off it and not yet handed out.
  int fd = -1;
  std::vector<std::uint8_t> in = std::vector<std::uint8_t>(std::size_t{1} << 16);
  std::size_t in_off = 0, in_len = 0;
  bool closed = false;  // the server closed the connection, or reading it failed
  int xi_opcode = 0;
  int wake_fd = -1;  // eventfd: stop() writes to it to end the poll
  std::array<std::int16_t, 256> by_keycode{};  // 0: ignore, > 0: action + 1, < 0: -(hotkey + 1)
  std::array<std::int16_t, 32> by_button{};
  // Per device id: 1 if it is an XTest slave ("<master> XTEST keyboard" / "XTEST pointer", the devices
  // XTestFakeKeyEvent and XTestFakeDeviceKeyEvent send through). Listener thread only after start().
  std::array<std::uint8_t, 256> is_xtest{};
  // Axes: the configured index of each mouse axis (-1: not configured, never read).
  std::array<std::int16_t, kMouseAxes> axis_of{-1, -1, -1, -1, -1};
  bool motion = false;  // a motion axis (dx, dy, x, y) is configured: XI_RawMotion is selected
  double rx = 0, ry = 0, rw = 1, rh = 1;  // the region mouse_x/mouse_y span, root coordinates
  // Per device id: 1 if its valuators 0/1 are absolute; the last raw position of such a device.
  std::array<std::uint8_t, 256> is_absolute{};
  std::array<std::array<double, 2>, 256> last_raw{};
  std::array<std::uint8_t, 256> has_last_raw{};
  // The last pointer position sent (mouse_x, mouse_y), so an unchanged one is not sent again.
  float last_pos[2] = {-1.0f, -1.0f};
  bool server_clock = false;  // the last event's server time was on the engine's clock (see stamp())
  // Reading the event connection (xc, conn, the state above, the queues' producer side) is done by
  // the thread or by the consumer in collect(), one at a time.
  std::mutex read_mutex;
  std::int64_t last_read = 0;  // when a read last found events (engine clock)

  // With a motion axis, events are stamped from the X server's own time of the event rather than
  // on arrival, so they may be read late (by the consumer when it polls, see the header) without
  // being stamped late. The server's time (CARD32 ms; X.Org's
  // GetTimeInMillis: CLOCK_MONOTONIC, or CLOCK_MONOTONIC_COARSE when that ticks every ms or finer)
  // is on the engine's clock when the server runs on this machine: then it is at most a second
  // behind the arrival (the lag, taken mod 2^32 ms). The stamp is the end of the ms after the
  // server's (a coarse clock lags by up to a tick), so it is never before the event happened, and
  // never after its arrival. A server on another clock (remote, or another boot) gives implausible
  // lags: those events keep their arrival time and the thread reads at once.
  std::int64_t stamp(std::int64_t arrival, Time server_ms) {
    constexpr std::uint32_t kMaxLagMs = 1000;
    const std::int64_t arrival_ms = arrival / 1000000;
    const std::uint32_t lag = static_cast<std::uint32_t>(arrival_ms) - static_cast<std::uint32_t>(server_ms);
    server_clock = lag <= kMaxLagMs;
    if (!server_clock) return arrival;
    const std::int64_t t = (arrival_ms - static_cast<std::int64_t>(lag) + 2) * 1000000 - 1;
    return t < arrival ? t : arrival;
  }

  // The next whole wire event (valid until the next call), reading the socket when the buffer holds
  // none; nullptr once the socket is empty (or closed). One recv takes every event the X server has
  // written so far, up to 64 KB (~900 raw motions).
  const std::uint8_t* next_event() {
    while (!closed) {
      const std::size_t have = in_len - in_off;
      if (have >= kWireEventBytes) {
        const std::uint8_t* e = in.data() + in_off;
        const std::size_t size = wire_size(e);
        if (have >= size) {
          in_off += size;
          return e;
        }
        if (size > kMaxWireBytes) {  // no X event is this long: the stream is not one
          closed = true;
          break;
        }
        if (size > in.size()) in.resize(size);  // one event longer than the buffer (none are, in practice)
      }
      std::memmove(in.data(), in.data() + in_off, have);  // the part of an event read so far
      in_off = 0;
      in_len = have;
      const ssize_t n = recv(fd, in.data() + in_len, in.size() - in_len, MSG_DONTWAIT);
      if (n > 0) {
        in_len += static_cast<std::size_t>(n);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
        closed = true;
      } else if (errno != EINTR) {
        return nullptr;
      }
    }
    return nullptr;
  }

  // Re-read which devices are XTest slaves and which report absolute positions: at start and on every
  // XI_HierarchyChanged (a master added with `xinput create-master` brings its own XTest slaves).
  void query_devices() {
    is_xtest.fill(0);
    is_absolute.fill(0);
    has_last_raw.fill(0);
    int n = 0;
    XIDeviceInfo* info = XIQueryDevice(conn.get(), XIAllDevices, &n);
    for (int i = 0; i < n; ++i) {
      const bool slave = info[i].use == XISlaveKeyboard || info[i].use == XISlavePointer;
      if (!slave || info[i].deviceid < 0 || info[i].deviceid >= 256) continue;
      const auto id = static_cast<std::size_t>(info[i].deviceid);
      if (info[i].name && std::strstr(info[i].name, " XTEST ") != nullptr) is_xtest[id] = 1;
      for (int c = 0; c < info[i].num_classes; ++c) {
        if (info[i].classes[c]->type != XIValuatorClass) continue;
        const auto* v = reinterpret_cast<const XIValuatorClassInfo*>(info[i].classes[c]);
        if (v->number == 0 && v->mode == XIModeAbsolute) is_absolute[id] = 1;
      }
    }
    if (info) XIFreeDeviceInfo(info);
  }

  // A raw motion's movement along valuator v (0: x, 1: y) in device units; false when it has none.
  bool delta(const WireRaw& raw, std::int32_t device, int v, double* out) {
    double value = 0;
    if (!raw_valuator(raw, v, &value)) return false;
    if (device < 0 || device >= 256 || !is_absolute[static_cast<std::size_t>(device)]) {
      *out = value;
      return value != 0.0;
    }
    const auto id = static_cast<std::size_t>(device);
    const bool had = (has_last_raw[id] >> v) & 1;
    const double before = last_raw[id][static_cast<std::size_t>(v)];
    last_raw[id][static_cast<std::size_t>(v)] = value;
    has_last_raw[id] = static_cast<std::uint8_t>(has_last_raw[id] | (1 << v));
    *out = value - before;
    return had && *out != 0.0;
  }

  // The pointer of master `device` (the client pointer when < 0) in [0, 1] across the region; false
  // when the query failed (the device went away).
  bool pointer(int device, float out[2]) {
    Display* d = conn.get();
    if (device < 0 && !XIGetClientPointer(d, None, &device)) return false;
    Window root_ret = 0, child = 0;
    double root_x = 0, root_y = 0, win_x = 0, win_y = 0;
    XIButtonState buttons{};
    XIModifierState mods{};
    XIGroupState group{};
    x11::ErrorTrap trap(d, false);
    const Bool ok = XIQueryPointer(d, device, conn.root(), &root_ret, &child, &root_x, &root_y, &win_x, &win_y,
                                   &buttons, &mods, &group);
    if (buttons.mask) XFree(buttons.mask);
    if (!ok || trap.code() != 0) return false;
    // 0 at the region's first pixel, 1 at its last; clipped outside the region.
    out[0] = static_cast<float>(std::fmin(1.0, std::fmax(0.0, (root_x - rx) / std::fmax(rw - 1, 1.0))));
    out[1] = static_cast<float>(std::fmin(1.0, std::fmax(0.0, (root_y - ry) / std::fmax(rh - 1, 1.0))));
    return true;
  }

  Impl(const std::string& display, const std::vector<std::string>& actions, const std::vector<std::string>& hotkeys,
       const std::vector<std::string>& axes, const std::vector<int>& region)
      : conn(display) {
    Display* d = conn.get();
    int event = 0, err = 0;
    if (!XQueryExtension(d, "XInputExtension", &xi_opcode, &event, &err)) {
      throw CaptureError("the X server has no XInput extension; use --input evdev");
    }
    int major = 2, minor = 0;
    if (XIQueryVersion(d, &major, &minor) != Success) {
      throw CaptureError("the X server's XInput is older than 2.0; use --input evdev");
    }
    auto map = [&](const std::string& name, std::int16_t code) {
      const ActionKey& a = require_x11_action(name, false);
      if (a.x_button) {
        by_button[static_cast<std::size_t>(a.x_button)] = code;
        return;
      }
      const KeyCode kc = XKeysymToKeycode(d, a.x_keysym);
      if (kc == 0) throw InvalidArgument("action '" + name + "' has no key in this X keyboard map");
      if (by_keycode[kc] != 0) throw InvalidArgument("'" + name + "' is configured twice (as an action and a hotkey?)");
      by_keycode[kc] = code;
    };
    for (std::size_t i = 0; i < actions.size(); ++i) map(actions[i], static_cast<std::int16_t>(i + 1));
    for (std::size_t h = 0; h < hotkeys.size(); ++h) map(hotkeys[h], static_cast<std::int16_t>(-(static_cast<int>(h) + 1)));
    for (std::size_t i = 0; i < axes.size(); ++i) {
      int k = 0;
      while (k < kMouseAxes && axes[i] != kMouseAxisNames[k]) ++k;
      if (k == kMouseAxes) {
        if (axes[i].rfind("pad_", 0) == 0) {
          throw InvalidArgument("'" + axes[i] + "' is a gamepad axis, which X11 does not report: " + axes[i] +
                                " needs an evdev input (--input evdev --pad NAME)");
        }
        throw InvalidArgument("unknown axis '" + axes[i] + "' for X11; valid: mouse_dx, mouse_dy, wheel, mouse_x, mouse_y");
      }
      if (axis_of[static_cast<std::size_t>(k)] >= 0) throw InvalidArgument("axis '" + axes[i] + "' is configured twice");
      axis_of[static_cast<std::size_t>(k)] = static_cast<std::int16_t>(i);
      motion = motion || k != kWheel;
    }
    if (!region.empty()) {
      if (region.size() != 4 || region[2] <= 0 || region[3] <= 0) {
        throw InvalidArgument("region must be (x, y, w, h) with w, h > 0");
      }
      rx = region[0], ry = region[1], rw = region[2], rh = region[3];
    } else {
      rw = conn.screen_width(), rh = conn.screen_height();
    }

    // Raw events are delivered to the root window for all master devices regardless of focus, and
    // (XI 2.1 and later) of grabs: the XCB connection says it speaks 2.2.
    // https://www.x.org/releases/current/doc/inputproto/XI2proto.txt ("Raw events")
    xc = xcb_connect(display.empty() ? nullptr : display.c_str(), nullptr);
    if (xcb_connection_has_error(xc)) {
      xcb_disconnect(xc);
      xc = nullptr;
      throw CaptureError("cannot open a second connection to X display '" + conn.name() + "' for input events");
    }
    xXIQueryVersionReq version{};
    version.major_version = 2;
    version.minor_version = 2;
    xcb_generic_error_t* error = nullptr;
    std::free(xcb_wait_for_reply(xc, xi_request(xc, X_XIQueryVersion, &version, sizeof version, false), &error));
    if (error) {
      std::free(error);
      throw CaptureError("the X server's XInput refused version 2.2 on the event connection; use --input evdev");
    }
    // XISelectEvents: the header, then per mask its device and length (4-byte units) and the bits.
    constexpr int kMaskWords = (XIMaskLen(XI_LASTEVENT) + 3) / 4;
    struct {
      xXISelectEventsReq head;
      struct {
        xXIEventMask head;
        std::uint32_t bits[kMaskWords];
      } masks[2];
    } sel{};
    static_assert(sizeof sel == sz_xXISelectEventsReq + 2 * (sizeof(xXIEventMask) + 4 * kMaskWords), "packed wire request");
    sel.head.win = static_cast<std::uint32_t>(conn.root());
    sel.head.num_masks = 2;
    auto set = [](std::uint32_t* bits, int event) { bits[event / 32] |= 1u << (event % 32); };
    sel.masks[0].head.deviceid = XIAllMasterDevices;
    sel.masks[0].head.mask_len = kMaskWords;
    set(sel.masks[0].bits, XI_RawKeyPress);
    set(sel.masks[0].bits, XI_RawKeyRelease);
    set(sel.masks[0].bits, XI_RawButtonPress);
    set(sel.masks[0].bits, XI_RawButtonRelease);
    if (motion) set(sel.masks[0].bits, XI_RawMotion);  // a 1000 Hz mouse's events only when asked for
    // Hierarchy changes (devices added or removed) come on XIAllDevices.
    sel.masks[1].head.deviceid = XIAllDevices;
    sel.masks[1].head.mask_len = kMaskWords;
    set(sel.masks[1].bits, XI_HierarchyChanged);
    error = xcb_request_check(xc, {xi_request(xc, X_XISelectEvents, &sel, sizeof sel, true)});
    if (error) {
      const int code = error->error_code;
      std::free(error);
      throw CaptureError("XISelectEvents failed (X error " + std::to_string(code) + ")");
    }
    // From here on next_event() reads the socket, starting with the events XCB read ahead while it
    // waited for the check's reply, turned back into wire form (XCB keeps a generic event's 4-byte
    // full_sequence between its first 32 bytes and the rest). XCB holds no part of an event: its 16 KB
    // buffer took everything the server had written, and no request of ours is in flight.
    for (xcb_generic_event_t* e = xcb_poll_for_queued_event(xc); e != nullptr; e = xcb_poll_for_queued_event(xc)) {
      const auto* b = reinterpret_cast<const std::uint8_t*>(e);
      const std::size_t size = wire_size(b);
      if (in_len + size > in.size()) in.resize(in_len + size);
      std::memcpy(in.data() + in_len, b, kWireEventBytes);
      std::memcpy(in.data() + in_len + kWireEventBytes, b + sizeof(xcb_generic_event_t), size - kWireEventBytes);
      in_len += size;
      std::free(e);
    }
    fd = xcb_get_file_descriptor(xc);
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0) throw CaptureError("eventfd failed");
    query_devices();
  }

  ~Impl() {
    if (wake_fd >= 0) close(wake_fd);
    if (xc) xcb_disconnect(xc);
  }
};

X11InputListener::X11InputListener(const std::string& display, const std::vector<std::string>& actions,
                                   const std::vector<std::string>& hotkeys, std::size_t capacity,
                                   const std::vector<std::string>& axes, const std::vector<int>& region)
    : Listener(actions.size(), hotkeys.size(), capacity, axes.size()),
      impl_(std::make_unique<Impl>(display, actions, hotkeys, axes, region)) {}

X11InputListener::~X11InputListener() { stop(); }

void X11InputListener::start() {
  if (thread_.joinable()) throw InvalidArgument("listener already started");
  running_.store(true, std::memory_order_release);
  thread_ = std::thread([this] { run(); });
}

void X11InputListener::stop() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t w = write(impl_->wake_fd, &one, sizeof one);
    thread_.join();
  }
  running_.store(false, std::memory_order_release);
}

void X11InputListener::send_pointer(int device, std::int32_t source, bool injected, std::int64_t now) {
  Impl& im = *impl_;
  float pos[2];
  if (!im.pointer(device, pos)) return;
  const std::int16_t idx[2] = {im.axis_of[kX], im.axis_of[kY]};
  for (int k = 0; k < 2; ++k) {
    if (idx[k] >= 0 && pos[k] != im.last_pos[k]) emit_axis(now, idx[k], pos[k], source, injected);
    im.last_pos[k] = pos[k];
  }
}

int X11InputListener::read_batch() {
  Impl& im = *impl_;
  const bool want_pos = im.axis_of[kX] >= 0 || im.axis_of[kY] >= 0;
  int got = 0;
  for (;;) {
    // mouse_x/mouse_y: the position after a batch with a raw motion in it, where the batch's last
    // raw motion (its master, source and stamp) left the pointer.
    int moved_master = -1;
    std::int32_t moved_source = 0;
    bool moved_injected = false;
    std::int64_t moved_t = 0;
    // Until the socket is empty: whoever reads must leave nothing behind, or an event could reach the
    // recorder after the frame it belongs to was written.
    for (const std::uint8_t* e = im.next_event(); e != nullptr; e = im.next_event()) {
      ++got;
      const std::int64_t arrival = monotonic_ns();
      const auto* ge = reinterpret_cast<const xcb_ge_generic_event_t*>(e);
      if ((e[0] & 0x7f) != XCB_GE_GENERIC || ge->extension != im.xi_opcode) {
        continue;  // an error or reply (none expected) or a core event (none selected)
      }
      const int type = ge->event_type;
      if (type == XI_HierarchyChanged) {
        im.query_devices();
        continue;
      }
      const WireRaw raw = wire_raw(e);
      const std::int64_t now = im.motion ? im.stamp(arrival, raw.head->time) : arrival;
      // Raw events selected on the masters carry the slave that produced them as sourceid.
      const std::int32_t device = raw.head->sourceid;
      const bool xtest = device >= 0 && device < 256 && im.is_xtest[static_cast<std::size_t>(device)] != 0;
      const std::int64_t detail = raw.head->detail;
      if (type == XI_RawMotion) {
        double v = 0;
        if (im.axis_of[kDx] >= 0 && im.delta(raw, device, 0, &v)) emit_axis(now, im.axis_of[kDx], static_cast<float>(v), device, xtest);
        if (im.axis_of[kDy] >= 0 && im.delta(raw, device, 1, &v)) emit_axis(now, im.axis_of[kDy], static_cast<float>(v), device, xtest);
        if (want_pos) moved_master = raw.head->deviceid, moved_source = device, moved_injected = xtest, moved_t = now;
        continue;
      }
      if (type == XI_RawButtonPress && (detail == 4 || detail == 5) && im.axis_of[kWheel] >= 0) {
        emit_axis(now, im.axis_of[kWheel], detail == 4 ? 1.0f : -1.0f, device, xtest);
      }
      std::int16_t code = 0;
      if ((type == XI_RawKeyPress || type == XI_RawKeyRelease) && detail < 256) {
        code = im.by_keycode[static_cast<std::size_t>(detail)];
      } else if ((type == XI_RawButtonPress || type == XI_RawButtonRelease) && detail < 32) {
        code = im.by_button[static_cast<std::size_t>(detail)];
      }
      const bool press = type == XI_RawKeyPress || type == XI_RawButtonPress;
      emit(now, code, press, device, xtest);  // drops what is not configured, and repeats
    }
    if (moved_master < 0) break;
    send_pointer(moved_master, moved_source, moved_injected, moved_t);  // a round trip on Xlib's connection
    // and events may have come meanwhile: read again
  }
  if (got > 0) im.last_read = monotonic_ns();
  return got;
}

void X11InputListener::collect() {
  Impl& im = *impl_;
  if (!im.motion || !running()) return;  // keys alone: the thread reads each event as it comes
  std::lock_guard<std::mutex> lock(im.read_mutex);
  read_batch();
}

void X11InputListener::run() {
  Impl& im = *impl_;
  if (im.axis_of[kX] >= 0 || im.axis_of[kY] >= 0) {
    std::lock_guard<std::mutex> lock(im.read_mutex);
    send_pointer(-1, 0, false, monotonic_ns());  // mouse_x/mouse_y: the position at start
  }
  pollfd fds[2] = {{im.fd, POLLIN, 0}, {im.wake_fd, POLLIN, 0}};
  bool streaming = false;
  for (;;) {
    std::int64_t last_read = 0;
    bool closed = false;
    {
      std::lock_guard<std::mutex> lock(im.read_mutex);
      const std::int64_t read_at = monotonic_ns();
      // While streaming, a consumer that found events less than kMotionBatchMs ago keeps reading them:
      // this wake-up only moves the next one on (a recorder polling 15 times a second leaves this
      // thread nothing to read).
      if (!streaming || read_at - im.last_read >= kMotionBatchMs * 1000000LL) {
        read_batch();
        last_read = std::max(im.last_read, read_at);  // this read counts too, found it events or not
      } else {
        last_read = im.last_read;
      }
      // Events carry the server's time and came lately: the mouse is moving.
      streaming = im.motion && im.server_clock && read_at - im.last_read < kStreamingNs;
      closed = im.closed;  // a consumer's read may have found it, under the same lock
    }
    if (closed || im.conn.broken()) {
      set_error("lost the connection to X display '" + im.conn.name() + "'");
      break;
    }
    if (streaming) {
      // Events are stamped by the server's time, so reading them late does not make them late: while
      // the mouse moves the socket is not polled (it would wake this thread for every motion), the
      // consumer reads it when it takes the events (collect()), and this thread only kMotionBatchMs
      // after whoever read last, so nothing waits longer than that (stop() still ends the wait).
      const std::int64_t due_ms = (last_read + kMotionBatchMs * 1000000LL - monotonic_ns()) / 1000000;
      pollfd wake = {im.wake_fd, POLLIN, 0};
      if (poll(&wake, 1, static_cast<int>(due_ms < 1 ? 1 : due_ms)) > 0) break;
      continue;
    }
    fds[0].revents = fds[1].revents = 0;
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) break;
    if (fds[0].revents & (POLLERR | POLLHUP)) {
      set_error("the X server closed the connection");
      break;
    }
  }
  running_.store(false, std::memory_order_release);
}

}  // namespace engine
