#include "input/xtest_actuator.hpp"

#include <X11/Xlib.h>
#include <X11/extensions/XInput.h>
#include <X11/extensions/XInput2.h>
#include <X11/extensions/XTest.h>

#include <atomic>
#include <mutex>

#include "common/error.hpp"
#include "input/action_table.hpp"
#include "x11/x11_common.hpp"

namespace engine {

struct XTestActuator::Impl {
  x11::Connection conn;
  std::vector<const ActionKey*> keys;
  std::vector<unsigned int> codes;  // keycode, or pointer button
  std::unique_ptr<std::atomic<bool>[]> held;
  // The XTest slaves this actuator sends through (keyboard, pointer; -1 if the server has no XInput2).
  int keyboard_id = -1, pointer_id = -1;
  int master_keyboard_id = -1;
  // Only with a named master: its XTest slaves opened through XInput 1 (XTestFakeDevice*Event).
  XDevice* keyboard_dev = nullptr;
  XDevice* pointer_dev = nullptr;
  // Keys (the play loop) and motion (the output's motion scheduler) share this connection from two
  // threads; Xlib is not thread-safe without XInitThreads, which must precede every other call.
  std::mutex mu;

  // The XTest slaves of master `prefix` ("Virtual core" for the core pair XTestFakeKeyEvent uses).
  bool find_slaves(const std::string& prefix) {
    int n = 0;
    XIDeviceInfo* info = XIQueryDevice(conn.get(), XIAllDevices, &n);
    bool master = false;
    for (int i = 0; i < n; ++i) {
      const std::string name = info[i].name ? info[i].name : "";
      if (info[i].use == XIMasterKeyboard && name == prefix + " keyboard") {
        master = true;
        master_keyboard_id = info[i].deviceid;
      }
      if (name == prefix + " XTEST keyboard") keyboard_id = info[i].deviceid;
      if (name == prefix + " XTEST pointer") pointer_id = info[i].deviceid;
    }
    if (info) XIFreeDeviceInfo(info);
    return master;
  }

  Impl(const std::string& display, const std::vector<std::string>& actions, const std::string& master)
      : conn(display) {
    Display* d = conn.get();
    int ev = 0, err = 0, major = 0, minor = 0;
    if (!XTestQueryExtension(d, &ev, &err, &major, &minor)) {
      throw CaptureError("the X server has no XTEST extension, so keys cannot be sent; use --output uinput");
    }
    int xi_op = 0, xi_ev = 0, xi_err = 0, xi_major = 2, xi_minor = 0;
    const bool xi2 = XQueryExtension(d, "XInputExtension", &xi_op, &xi_ev, &xi_err) &&
                     XIQueryVersion(d, &xi_major, &xi_minor) == Success;
    if (master.empty()) {
      if (xi2) find_slaves("Virtual core");
    } else {
      // A master of our own: created here if missing. The X server removes a master when the client
      // that created it disconnects, so it lives exactly as long as this actuator (measured on Xvfb
      // 21: `xinput create-master` alone leaves nothing behind).
      if (!xi2) throw CaptureError("sending as master '" + master + "' needs XInput 2 on the X server");
      if (!find_slaves(master)) {
        std::string name = master;
        XIAddMasterInfo add{XIAddMaster, name.data(), True, True};
        x11::ErrorTrap trap(d);
        XIChangeHierarchy(d, reinterpret_cast<XIAnyHierarchyChangeInfo*>(&add), 1);
        if (trap.sync() != 0) throw CaptureError("cannot add master '" + master + "': " + trap.describe());
        find_slaves(master);
      }
      if (keyboard_id < 0 || pointer_id < 0) throw CaptureError("master '" + master + "' has no XTest slaves");
      keyboard_dev = XOpenDevice(d, static_cast<XID>(keyboard_id));
      pointer_dev = XOpenDevice(d, static_cast<XID>(pointer_id));
      if (!keyboard_dev || !pointer_dev) throw CaptureError("cannot open the XTest slaves of master '" + master + "'");
      // Each master keyboard has its own focus, and a new one's is not the core keyboard's: without
      // this its keys would reach no window. It copies the core focus as it is now.
      ::Window focus = 0;
      int revert = 0;
      XGetInputFocus(d, &focus, &revert);
      if (focus != None && master_keyboard_id >= 0) {
        x11::ErrorTrap trap(d);
        XISetFocus(d, master_keyboard_id, focus, CurrentTime);
        trap.sync();  // a window gone meanwhile: the keys go nowhere, as a person's would
      }
    }
    held = std::make_unique<std::atomic<bool>[]>(actions.size());
    for (std::size_t i = 0; i < actions.size(); ++i) {
      const ActionKey& a = require_x11_action(actions[i], true);
      keys.push_back(&a);
      if (a.x_button) {
        codes.push_back(static_cast<unsigned>(a.x_button));
      } else {
        const KeyCode kc = XKeysymToKeycode(d, a.x_keysym);
        if (kc == 0) throw InvalidArgument("action '" + actions[i] + "' has no key in this X keyboard map");
        codes.push_back(kc);
      }
      held[i].store(false);
    }
  }

  ~Impl() {
    if (conn.broken()) return;
    if (keyboard_dev) XCloseDevice(conn.get(), keyboard_dev);
    if (pointer_dev) XCloseDevice(conn.get(), pointer_dev);
  }

  void send(std::size_t i, bool down) {
    Display* d = conn.get();
    const Bool is_down = down ? True : False;
    if (keys[i]->x_button) {
      if (pointer_dev) {
        XTestFakeDeviceButtonEvent(d, pointer_dev, codes[i], is_down, nullptr, 0, CurrentTime);
      } else {
        XTestFakeButtonEvent(d, codes[i], is_down, CurrentTime);
      }
    } else if (keyboard_dev) {
      XTestFakeDeviceKeyEvent(d, keyboard_dev, codes[i], is_down, nullptr, 0, CurrentTime);
    } else {
      XTestFakeKeyEvent(d, codes[i], is_down, CurrentTime);
    }
    held[i].store(down, std::memory_order_relaxed);
  }
};

XTestActuator::XTestActuator(const std::string& display, const std::vector<std::string>& actions,
                             const std::string& master)
    : impl_(std::make_unique<Impl>(display, actions, master)) {}

XTestActuator::~XTestActuator() {
  if (!impl_->conn.broken()) release_all();
}

int XTestActuator::apply(const std::uint8_t* state, std::size_t n) {
  const std::lock_guard<std::mutex> lock(impl_->mu);
  if (n != impl_->keys.size()) {
    throw InvalidArgument("expected " + std::to_string(impl_->keys.size()) + " action states, got " + std::to_string(n));
  }
  impl_->conn.check_alive();
  int sent = 0;
  for (int pass = 0; pass < 2; ++pass) {  // releases before presses
    for (std::size_t i = 0; i < n; ++i) {
      const bool want = state[i] != 0;
      if (want != impl_->held[i].load(std::memory_order_relaxed) && want == (pass == 1)) {
        impl_->send(i, want);
        ++sent;
      }
    }
  }
  if (sent) XFlush(impl_->conn.get());
  return sent;
}

void XTestActuator::set(std::size_t action, bool down) {
  const std::lock_guard<std::mutex> lock(impl_->mu);
  if (action >= impl_->keys.size()) throw InvalidArgument("action index out of range");
  impl_->conn.check_alive();
  if (impl_->held[action].load(std::memory_order_relaxed) == down) return;
  impl_->send(action, down);
  XFlush(impl_->conn.get());
}

int XTestActuator::release_all() {
  const std::lock_guard<std::mutex> lock(impl_->mu);
  int sent = 0;
  for (std::size_t i = 0; i < impl_->keys.size(); ++i) {
    if (impl_->held[i].load(std::memory_order_relaxed)) {
      impl_->send(i, false);
      ++sent;
    }
  }
  // XSync, not XFlush: the releases must have reached the server before we return (exit paths).
  if (!impl_->conn.broken()) XSync(impl_->conn.get(), False);
  return sent;
}

std::vector<bool> XTestActuator::held() const {
  std::vector<bool> out(impl_->keys.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = impl_->held[i].load(std::memory_order_relaxed);
  return out;
}

std::vector<bool> XTestActuator::system_held() {
  const std::lock_guard<std::mutex> lock(impl_->mu);
  Display* d = impl_->conn.get();
  impl_->conn.check_alive();
  XSync(d, False);
  char keymap[32] = {0};
  XQueryKeymap(d, keymap);
  ::Window root = 0, child = 0;
  int rx = 0, ry = 0, wx = 0, wy = 0;
  unsigned int mask = 0;
  XQueryPointer(d, impl_->conn.root(), &root, &child, &rx, &ry, &wx, &wy, &mask);
  std::vector<bool> out(impl_->keys.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const unsigned int c = impl_->codes[i];
    if (impl_->keys[i]->x_button) {
      out[i] = (mask & (Button1Mask << (c - 1))) != 0;
    } else {
      out[i] = (keymap[c / 8] >> (c % 8)) & 1;
    }
  }
  return out;
}

int XTestActuator::release_system_held() {
  const std::vector<bool> down = system_held();
  const std::lock_guard<std::mutex> lock(impl_->mu);
  int sent = 0;
  for (std::size_t i = 0; i < down.size(); ++i) {
    if (down[i]) {
      impl_->send(i, false);
      ++sent;
    }
  }
  XSync(impl_->conn.get(), False);
  return sent;
}

std::size_t XTestActuator::size() const { return impl_->keys.size(); }

int XTestActuator::move(int dx, int dy, int wheel) {
  const std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->conn.check_alive();
  Display* d = impl_->conn.get();
  int sent = 0;
  if (dx != 0 || dy != 0) {
    if (impl_->pointer_dev) {
      int axes[2] = {dx, dy};
      XTestFakeDeviceMotionEvent(d, impl_->pointer_dev, True, 0, axes, 2, CurrentTime);
    } else {
      XTestFakeRelativeMotionEvent(d, dx, dy, CurrentTime);
    }
    ++sent;
  }
  const unsigned int button = wheel > 0 ? 4u : 5u;  // X's wheel: button 4 up (away), 5 down
  for (int k = 0; k < (wheel < 0 ? -wheel : wheel); ++k) {
    for (const Bool down : {True, False}) {
      if (impl_->pointer_dev) {
        XTestFakeDeviceButtonEvent(d, impl_->pointer_dev, button, down, nullptr, 0, CurrentTime);
      } else {
        XTestFakeButtonEvent(d, button, down, CurrentTime);
      }
      ++sent;
    }
  }
  if (sent) XFlush(d);
  return sent;
}

void XTestActuator::warp(int x, int y) {
  const std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->conn.check_alive();
  XTestFakeMotionEvent(impl_->conn.get(), -1, x, y, CurrentTime);  // -1: the screen the pointer is on
  XFlush(impl_->conn.get());
}

std::vector<int> XTestActuator::devices() const {
  std::vector<int> out;
  if (impl_->keyboard_id >= 0) out.push_back(impl_->keyboard_id);
  if (impl_->pointer_id >= 0) out.push_back(impl_->pointer_id);
  return out;
}

}  // namespace engine
