#include "input/xtest_actuator.hpp"

#include <X11/Xlib.h>
#include <X11/extensions/XTest.h>

#include <atomic>

#include "common/error.hpp"
#include "input/action_table.hpp"
#include "x11/x11_common.hpp"

namespace engine {

struct XTestActuator::Impl {
  x11::Connection conn;
  std::vector<const ActionKey*> keys;
  std::vector<unsigned int> codes;  // keycode, or pointer button
  std::unique_ptr<std::atomic<bool>[]> held;

  Impl(const std::string& display, const std::vector<std::string>& actions) : conn(display) {
    Display* d = conn.get();
    int ev = 0, err = 0, major = 0, minor = 0;
    if (!XTestQueryExtension(d, &ev, &err, &major, &minor)) {
      throw CaptureError("the X server has no XTEST extension, so keys cannot be sent; use --output uinput");
    }
    held = std::make_unique<std::atomic<bool>[]>(actions.size());
    for (std::size_t i = 0; i < actions.size(); ++i) {
      const ActionKey& a = require_action(actions[i]);
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

  void send(std::size_t i, bool down) {
    Display* d = conn.get();
    if (keys[i]->x_button) {
      XTestFakeButtonEvent(d, codes[i], down ? True : False, CurrentTime);
    } else {
      XTestFakeKeyEvent(d, codes[i], down ? True : False, CurrentTime);
    }
    held[i].store(down, std::memory_order_relaxed);
  }
};

XTestActuator::XTestActuator(const std::string& display, const std::vector<std::string>& actions)
    : impl_(std::make_unique<Impl>(display, actions)) {}

XTestActuator::~XTestActuator() {
  if (!impl_->conn.broken()) release_all();
}

int XTestActuator::apply(const std::uint8_t* state, std::size_t n) {
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
  if (action >= impl_->keys.size()) throw InvalidArgument("action index out of range");
  impl_->conn.check_alive();
  if (impl_->held[action].load(std::memory_order_relaxed) == down) return;
  impl_->send(action, down);
  XFlush(impl_->conn.get());
}

int XTestActuator::release_all() {
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

}  // namespace engine
