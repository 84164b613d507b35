#include "input/x11_listener.hpp"

#include <X11/Xlib.h>
#include <X11/extensions/XInput2.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "input/action_table.hpp"
#include "x11/x11_common.hpp"

namespace engine {

struct X11InputListener::Impl {
  x11::Connection conn;
  int xi_opcode = 0;
  int wake_fd = -1;  // eventfd: stop() writes to it to end the poll
  std::array<std::int16_t, 256> by_keycode{};  // 0: ignore, > 0: action + 1, < 0: -(hotkey + 1)
  std::array<std::int16_t, 32> by_button{};
  // Per device id: 1 if it is an XTest slave ("<master> XTEST keyboard" / "XTEST pointer", the devices
  // XTestFakeKeyEvent and XTestFakeDeviceKeyEvent send through). Listener thread only after start().
  std::array<std::uint8_t, 256> is_xtest{};

  // Re-read which devices are XTest slaves: at start and on every XI_HierarchyChanged (a master added
  // with `xinput create-master` brings its own XTest slaves).
  void query_devices() {
    is_xtest.fill(0);
    int n = 0;
    XIDeviceInfo* info = XIQueryDevice(conn.get(), XIAllDevices, &n);
    for (int i = 0; i < n; ++i) {
      const bool slave = info[i].use == XISlaveKeyboard || info[i].use == XISlavePointer;
      if (slave && info[i].deviceid >= 0 && info[i].deviceid < 256 && info[i].name &&
          std::strstr(info[i].name, " XTEST ") != nullptr) {
        is_xtest[static_cast<std::size_t>(info[i].deviceid)] = 1;
      }
    }
    if (info) XIFreeDeviceInfo(info);
  }

  Impl(const std::string& display, const std::vector<std::string>& actions, const std::vector<std::string>& hotkeys)
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
      const ActionKey& a = require_action(name);
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

    // Raw events are delivered to the root window for all master devices regardless of focus.
    // https://www.x.org/releases/current/doc/inputproto/XI2proto.txt ("Raw events")
    std::array<unsigned char, XIMaskLen(XI_LASTEVENT)> mask{};
    XISetMask(mask.data(), XI_RawKeyPress);
    XISetMask(mask.data(), XI_RawKeyRelease);
    XISetMask(mask.data(), XI_RawButtonPress);
    XISetMask(mask.data(), XI_RawButtonRelease);
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
                                   const std::vector<std::string>& hotkeys, std::size_t capacity)
    : Listener(actions.size(), hotkeys.size(), capacity), impl_(std::make_unique<Impl>(display, actions, hotkeys)) {}

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
  Display* d = impl_->conn.get();
  pollfd fds[2] = {{ConnectionNumber(d), POLLIN, 0}, {impl_->wake_fd, POLLIN, 0}};
  for (;;) {
    while (XPending(d) > 0) {
      XEvent ev;
      XNextEvent(d, &ev);
      const std::int64_t now = monotonic_ns();
      if (ev.type != GenericEvent || ev.xcookie.extension != impl_->xi_opcode) continue;
      if (!XGetEventData(d, &ev.xcookie)) continue;
      const int type = ev.xcookie.evtype;
      if (type == XI_HierarchyChanged) {
        XFreeEventData(d, &ev.xcookie);
        impl_->query_devices();
        continue;
      }
      const auto* raw = static_cast<const XIRawEvent*>(ev.xcookie.data);
      // Raw events selected on the masters carry the slave that produced them as sourceid.
      const std::int32_t device = raw->sourceid;
      const bool xtest = device >= 0 && device < 256 && impl_->is_xtest[static_cast<std::size_t>(device)] != 0;
      std::int16_t code = 0;
      if ((type == XI_RawKeyPress || type == XI_RawKeyRelease) && raw->detail >= 0 && raw->detail < 256) {
        code = impl_->by_keycode[static_cast<std::size_t>(raw->detail)];
      } else if ((type == XI_RawButtonPress || type == XI_RawButtonRelease) && raw->detail >= 0 && raw->detail < 32) {
        code = impl_->by_button[static_cast<std::size_t>(raw->detail)];
      }
      const bool press = type == XI_RawKeyPress || type == XI_RawButtonPress;
      XFreeEventData(d, &ev.xcookie);
      emit(now, code, press, device, xtest);  // drops what is not configured, and repeats
    }
    if (impl_->conn.broken()) {
      set_error("lost the connection to X display '" + impl_->conn.name() + "'");
      break;
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
