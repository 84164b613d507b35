#include "input/x11_listener.hpp"

#include <X11/Xlib.h>
#include <X11/extensions/XInput2.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstring>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "input/action_table.hpp"
#include "x11/x11_common.hpp"

namespace engine {

namespace {

// The axes X11 can report, by what produces them.
enum MouseAxis { kDx, kDy, kWheel, kX, kY, kMouseAxes };
constexpr const char* kMouseAxisNames[kMouseAxes] = {"mouse_dx", "mouse_dy", "wheel", "mouse_x", "mouse_y"};
// How long the thread lets events gather between reads when they carry usable server times: well
// under the recorder's 30 ms holdback, so every event is queued before its frame is labelled.
constexpr int kMotionBatchMs = 10;

// The raw value of valuator v in a raw event (its values are packed: one per set mask bit).
bool raw_valuator(const XIRawEvent* r, int v, double* out) {
  if (v >= r->valuators.mask_len * 8 || !XIMaskIsSet(r->valuators.mask, v)) return false;
  int idx = 0;
  for (int i = 0; i < v; ++i) idx += XIMaskIsSet(r->valuators.mask, i) ? 1 : 0;
  *out = r->raw_values[idx];
  return true;
}

}  // namespace

struct X11InputListener::Impl {
  x11::Connection conn;
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

  // With a motion axis, events are stamped from the X server's own time of the event rather than
  // on arrival, so the thread may read them in batches (a 1000 Hz mouse is then ~60 wake-ups a
  // second, not 1000) without making them late. The server's time (CARD32 ms; X.Org's
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
  bool delta(const XIRawEvent* raw, std::int32_t device, int v, double* out) {
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

    // Raw events are delivered to the root window for all master devices regardless of focus.
    // https://www.x.org/releases/current/doc/inputproto/XI2proto.txt ("Raw events")
    std::array<unsigned char, XIMaskLen(XI_LASTEVENT)> mask{};
    XISetMask(mask.data(), XI_RawKeyPress);
    XISetMask(mask.data(), XI_RawKeyRelease);
    XISetMask(mask.data(), XI_RawButtonPress);
    XISetMask(mask.data(), XI_RawButtonRelease);
    if (motion) XISetMask(mask.data(), XI_RawMotion);  // a 1000 Hz mouse's events only when asked for
    // Hierarchy changes (devices added or removed) come on XIAllDevices.
    std::array<unsigned char, XIMaskLen(XI_LASTEVENT)> hmask{};
    XISetMask(hmask.data(), XI_HierarchyChanged);
    XIEventMask em[2] = {{XIAllMasterDevices, static_cast<int>(mask.size()), mask.data()},
                         {XIAllDevices, static_cast<int>(hmask.size()), hmask.data()}};
    x11::ErrorTrap trap(d);
    XISelectEvents(d, conn.root(), em, 2);
    if (trap.sync() != 0) throw CaptureError("XISelectEvents failed: " + trap.describe());
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd < 0) throw CaptureError("eventfd failed");
    query_devices();
  }

  ~Impl() {
    if (wake_fd >= 0) close(wake_fd);
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

void X11InputListener::run() {
  Impl& im = *impl_;
  Display* d = im.conn.get();
  const std::int16_t ax = im.axis_of[kX], ay = im.axis_of[kY];
  const bool want_pos = ax >= 0 || ay >= 0;
  // mouse_x/mouse_y: the position now, then after every batch of events with a raw motion in it.
  // now: the stamp of the batch's last raw motion (the position is where that motion left the pointer).
  auto send_pointer = [&](int device, std::int32_t source, bool injected, std::int64_t now) {
    float pos[2];
    if (!im.pointer(device, pos)) return;
    const std::int16_t idx[2] = {ax, ay};
    for (int k = 0; k < 2; ++k) {
      if (idx[k] >= 0 && pos[k] != im.last_pos[k]) emit_axis(now, idx[k], pos[k], source, injected);
      im.last_pos[k] = pos[k];
    }
  };
  if (want_pos) send_pointer(-1, 0, false, monotonic_ns());
  int moved_master = -1;  // a raw motion came from this master in the batch being handled (-1: none)
  std::int32_t moved_source = 0;
  bool moved_injected = false;
  std::int64_t moved_t = 0;
  pollfd fds[2] = {{ConnectionNumber(d), POLLIN, 0}, {im.wake_fd, POLLIN, 0}};
  for (;;) {
    // XPending reads the socket (a syscall) each call: only when Xlib's queue is empty.
    while (XQLength(d) > 0 || XPending(d) > 0) {
      XEvent ev;
      XNextEvent(d, &ev);
      const std::int64_t arrival = monotonic_ns();
      if (ev.type != GenericEvent || ev.xcookie.extension != im.xi_opcode) continue;
      if (!XGetEventData(d, &ev.xcookie)) continue;
      const int type = ev.xcookie.evtype;
      if (type == XI_HierarchyChanged) {
        XFreeEventData(d, &ev.xcookie);
        im.query_devices();
        continue;
      }
      const auto* raw = static_cast<const XIRawEvent*>(ev.xcookie.data);
      const std::int64_t now = im.motion ? im.stamp(arrival, raw->time) : arrival;
      // Raw events selected on the masters carry the slave that produced them as sourceid.
      const std::int32_t device = raw->sourceid;
      const bool xtest = device >= 0 && device < 256 && im.is_xtest[static_cast<std::size_t>(device)] != 0;
      if (type == XI_RawMotion) {
        double v = 0;
        if (im.axis_of[kDx] >= 0 && im.delta(raw, device, 0, &v)) emit_axis(now, im.axis_of[kDx], static_cast<float>(v), device, xtest);
        if (im.axis_of[kDy] >= 0 && im.delta(raw, device, 1, &v)) emit_axis(now, im.axis_of[kDy], static_cast<float>(v), device, xtest);
        if (want_pos) moved_master = raw->deviceid, moved_source = device, moved_injected = xtest, moved_t = now;
        XFreeEventData(d, &ev.xcookie);
        continue;
      }
      if (type == XI_RawButtonPress && (raw->detail == 4 || raw->detail == 5) && im.axis_of[kWheel] >= 0) {
        emit_axis(now, im.axis_of[kWheel], raw->detail == 4 ? 1.0f : -1.0f, device, xtest);
      }
      std::int16_t code = 0;
      if ((type == XI_RawKeyPress || type == XI_RawKeyRelease) && raw->detail >= 0 && raw->detail < 256) {
        code = im.by_keycode[static_cast<std::size_t>(raw->detail)];
      } else if ((type == XI_RawButtonPress || type == XI_RawButtonRelease) && raw->detail >= 0 && raw->detail < 32) {
        code = im.by_button[static_cast<std::size_t>(raw->detail)];
      }
      const bool press = type == XI_RawKeyPress || type == XI_RawButtonPress;
      XFreeEventData(d, &ev.xcookie);
      emit(now, code, press, device, xtest);  // drops what is not configured, and repeats
    }
    if (moved_master >= 0) {
      send_pointer(moved_master, moved_source, moved_injected, moved_t);
      moved_master = -1;
      continue;  // events that came during the query's round trip are queued in Xlib, not on the socket
    }
    if (im.conn.broken()) {
      set_error("lost the connection to X display '" + im.conn.name() + "'");
      break;
    }
    if (im.motion && im.server_clock) {
      // Events are stamped by the server's time: let a batch gather (stop() still ends the wait).
      pollfd wake = {im.wake_fd, POLLIN, 0};
      if (poll(&wake, 1, kMotionBatchMs) > 0) break;
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
