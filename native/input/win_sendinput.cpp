#include "input/win_sendinput.hpp"

#include "common/win32.hpp"

#include <atomic>
#include <utility>

#include "common/error.hpp"
#include "input/action_table.hpp"

namespace engine {

namespace {

// One INPUT for a press or release of `a`.
// https://learn.microsoft.com/windows/win32/api/winuser/ns-winuser-keybdinput
INPUT make_input(const ActionKey& a, bool down) {
  INPUT in{};
  if (a.win_scan == 0) {  // a mouse button: the table stores its VK_*BUTTON
    in.type = INPUT_MOUSE;
    switch (a.win_vk) {
      case VK_LBUTTON:
        in.mi.dwFlags = down ? MOUSEEVENTF_LEFTDOWN : MOUSEEVENTF_LEFTUP;
        break;
      case VK_RBUTTON:
        in.mi.dwFlags = down ? MOUSEEVENTF_RIGHTDOWN : MOUSEEVENTF_RIGHTUP;
        break;
      default:
        in.mi.dwFlags = down ? MOUSEEVENTF_MIDDLEDOWN : MOUSEEVENTF_MIDDLEUP;
        break;
    }
    return in;
  }
  in.type = INPUT_KEYBOARD;
  in.ki.wScan = static_cast<WORD>(a.win_scan);
  // Windows ignores wVk when KEYEVENTF_SCANCODE is set and derives the virtual key from the scan
  // code; Wine uses wVk for its key state instead, so giving both is right on each.
  in.ki.wVk = static_cast<WORD>(a.win_vk);
  in.ki.dwFlags = KEYEVENTF_SCANCODE | (a.win_extended ? KEYEVENTF_EXTENDEDKEY : 0) | (down ? 0 : KEYEVENTF_KEYUP);
  return in;
}

}  // namespace

struct SendInputActuator::Impl {
  std::vector<const ActionKey*> keys;
  std::unique_ptr<std::atomic<bool>[]> held;
  std::vector<INPUT> batch;  // reused by every apply(): no allocation on the play loop
  std::vector<std::pair<std::size_t, bool>> who;  // action index and new state of each batch entry

  explicit Impl(const std::vector<std::string>& actions) : held(std::make_unique<std::atomic<bool>[]>(actions.size())) {
    for (std::size_t i = 0; i < actions.size(); ++i) {
      keys.push_back(&require_action(actions[i]));
      held[i].store(false);
    }
    batch.reserve(actions.size());
    who.reserve(actions.size());
  }

  void add(std::size_t i, bool down) {
    batch.push_back(make_input(*keys[i], down));
    who.emplace_back(i, down);
  }

  // One SendInput call for the whole batch; held[] follows what Windows accepted.
  // https://learn.microsoft.com/windows/win32/api/winuser/nf-winuser-sendinput
  int flush() {
    if (batch.empty()) return 0;
    const UINT n = static_cast<UINT>(batch.size());
    const UINT sent = SendInput(n, batch.data(), sizeof(INPUT));
    const DWORD err = sent < n ? GetLastError() : 0;
    for (UINT k = 0; k < sent; ++k) held[who[k].first].store(who[k].second, std::memory_order_relaxed);
    batch.clear();
    who.clear();
    if (sent < n) {
      throw CaptureError("SendInput inserted " + std::to_string(sent) + " of " + std::to_string(n) +
                         " input events (error " + std::to_string(err) +
                         "): input is blocked, e.g. the lock screen or a UAC prompt is active");
    }
    return static_cast<int>(n);
  }
};

SendInputActuator::SendInputActuator(const std::vector<std::string>& actions)
    : impl_(std::make_unique<Impl>(actions)) {}

SendInputActuator::~SendInputActuator() { release_all(); }

int SendInputActuator::apply(const std::uint8_t* state, std::size_t n) {
  if (n != impl_->keys.size()) {
    throw InvalidArgument("expected " + std::to_string(impl_->keys.size()) + " action states, got " + std::to_string(n));
  }
  for (int pass = 0; pass < 2; ++pass) {  // releases before presses
    for (std::size_t i = 0; i < n; ++i) {
      const bool want = state[i] != 0;
      if (want != impl_->held[i].load(std::memory_order_relaxed) && want == (pass == 1)) impl_->add(i, want);
    }
  }
  return impl_->flush();
}

void SendInputActuator::set(std::size_t action, bool down) {
  if (action >= impl_->keys.size()) throw InvalidArgument("action index out of range");
  if (impl_->held[action].load(std::memory_order_relaxed) == down) return;
  impl_->add(action, down);
  impl_->flush();
}

int SendInputActuator::release_all() {
  for (std::size_t i = 0; i < impl_->keys.size(); ++i) {
    if (impl_->held[i].load(std::memory_order_relaxed)) impl_->add(i, false);
  }
  try {
    return impl_->flush();
  } catch (const CaptureError&) {
    // Nothing better to do on an exit path; held() shows what is still down.
    return 0;
  }
}

std::vector<bool> SendInputActuator::held() const {
  std::vector<bool> out(impl_->keys.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = impl_->held[i].load(std::memory_order_relaxed);
  return out;
}

std::vector<bool> SendInputActuator::system_held() {
  std::vector<bool> out(impl_->keys.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    // The most significant bit: down now. (Mouse buttons: physical, before SM_SWAPBUTTON.)
    out[i] = (static_cast<unsigned short>(GetAsyncKeyState(impl_->keys[i]->win_vk)) & 0x8000u) != 0;
  }
  return out;
}

int SendInputActuator::release_system_held() {
  const std::vector<bool> down = system_held();
  for (std::size_t i = 0; i < down.size(); ++i) {
    if (down[i]) impl_->add(i, false);
  }
  return impl_->flush();
}

std::size_t SendInputActuator::size() const { return impl_->keys.size(); }

}  // namespace engine
