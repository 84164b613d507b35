#include "input/win_sendinput.hpp"

#include "common/win32.hpp"

#include <atomic>
#include <cstdio>
#include <string>
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

int SendInputActuator::move(int dx, int dy, int wheel) {
  INPUT in[2]{};
  UINT n = 0;
  if (dx != 0 || dy != 0) {
    in[n].type = INPUT_MOUSE;
    in[n].mi.dx = dx;
    in[n].mi.dy = dy;
    in[n].mi.dwFlags = MOUSEEVENTF_MOVE;
    ++n;
  }
  if (wheel != 0) {
    in[n].type = INPUT_MOUSE;
    in[n].mi.mouseData = static_cast<DWORD>(wheel * WHEEL_DELTA);
    in[n].mi.dwFlags = MOUSEEVENTF_WHEEL;
    ++n;
  }
  if (n == 0) return 0;
  if (SendInput(n, in, sizeof(INPUT)) != n) {
    throw CaptureError("SendInput refused mouse motion (error " + std::to_string(GetLastError()) +
                       "): input is blocked, e.g. the lock screen or a UAC prompt is active");
  }
  return static_cast<int>(n);
}

void SendInputActuator::warp(int x, int y) {
  // Absolute coordinates are 0..65535 over the virtual desktop.
  const int vx = GetSystemMetrics(SM_XVIRTUALSCREEN), vy = GetSystemMetrics(SM_YVIRTUALSCREEN);
  const int vw = GetSystemMetrics(SM_CXVIRTUALSCREEN), vh = GetSystemMetrics(SM_CYVIRTUALSCREEN);
  INPUT in{};
  in.type = INPUT_MOUSE;
  in.mi.dx = static_cast<LONG>(((x - vx) * 65535LL) / (vw > 1 ? vw - 1 : 1));
  in.mi.dy = static_cast<LONG>(((y - vy) * 65535LL) / (vh > 1 ? vh - 1 : 1));
  in.mi.dwFlags = MOUSEEVENTF_MOVE | MOUSEEVENTF_ABSOLUTE | MOUSEEVENTF_VIRTUALDESK;
  if (SendInput(1, &in, sizeof(INPUT)) != 1) {
    throw CaptureError("SendInput refused a pointer move (error " + std::to_string(GetLastError()) + ")");
  }
}

// -- ViGEm ---------------------------------------------------------------------------------------
// The few ViGEmClient entry points used, declared here (the SDK's Client.h is not needed to build):
// https://github.com/nefarius/ViGEmClient (include/ViGEm/Client.h, Common.h).
namespace {
struct XusbReport {
  USHORT wButtons;
  BYTE bLeftTrigger;
  BYTE bRightTrigger;
  SHORT sThumbLX, sThumbLY, sThumbRX, sThumbRY;
};
constexpr unsigned long kVigemOk = 0x20000000UL;  // VIGEM_ERROR_NONE
using VigemAlloc = void* (*)();
using VigemFree = void (*)(void*);
using VigemConnect = unsigned long (*)(void*);
using VigemDisconnect = void (*)(void*);
using VigemTargetAlloc = void* (*)();
using VigemTargetFree = void (*)(void*);
using VigemTargetAdd = unsigned long (*)(void*, void*);
using VigemTargetRemove = unsigned long (*)(void*, void*);
using VigemX360Update = unsigned long (*)(void*, void*, XusbReport);

template <typename F>
F load(HMODULE dll, const char* name) {
  FARPROC p = GetProcAddress(dll, name);
  if (!p) throw CaptureError(std::string("ViGEmClient.dll has no ") + name + "; install a current ViGEmClient");
  return reinterpret_cast<F>(reinterpret_cast<void*>(p));
}
}  // namespace

struct ViGEmPad::Impl {
  HMODULE dll = nullptr;
  void* client = nullptr;
  void* target = nullptr;
  bool added = false;
  VigemFree free_client = nullptr;
  VigemDisconnect disconnect = nullptr;
  VigemTargetFree free_target = nullptr;
  VigemTargetRemove remove = nullptr;
  VigemX360Update update = nullptr;

  Impl() {
    dll = LoadLibraryW(L"ViGEmClient.dll");
    if (!dll) {
      throw CaptureError("ViGEmClient.dll was not found: install ViGEmBus and put ViGEmClient.dll beside python.exe "
                         "or on PATH to play with a virtual pad");
    }
    try {
      auto alloc = load<VigemAlloc>(dll, "vigem_alloc");
      auto connect = load<VigemConnect>(dll, "vigem_connect");
      auto target_alloc = load<VigemTargetAlloc>(dll, "vigem_target_x360_alloc");
      auto add = load<VigemTargetAdd>(dll, "vigem_target_add");
      free_client = load<VigemFree>(dll, "vigem_free");
      disconnect = load<VigemDisconnect>(dll, "vigem_disconnect");
      free_target = load<VigemTargetFree>(dll, "vigem_target_free");
      remove = load<VigemTargetRemove>(dll, "vigem_target_remove");
      update = load<VigemX360Update>(dll, "vigem_target_x360_update");
      client = alloc();
      if (!client) throw CaptureError("vigem_alloc failed (out of memory)");
      const unsigned long c = connect(client);
      if (c != kVigemOk) {
        throw CaptureError("cannot connect to the ViGEmBus driver (error 0x" + hex(c) + "): is ViGEmBus installed?");
      }
      target = target_alloc();
      const unsigned long a = add(client, target);
      if (a != kVigemOk) throw CaptureError("ViGEmBus refused a new Xbox 360 pad (error 0x" + hex(a) + ")");
      added = true;
    } catch (...) {
      close();
      throw;
    }
  }

  static std::string hex(unsigned long v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08lx", v);
    return buf;
  }

  void close() noexcept {
    if (added) remove(client, target);
    added = false;
    if (target && free_target) free_target(target);
    target = nullptr;
    if (client) {
      if (disconnect) disconnect(client);
      if (free_client) free_client(client);
    }
    client = nullptr;
    if (dll) FreeLibrary(dll);
    dll = nullptr;
  }
};

ViGEmPad::ViGEmPad() : impl_(std::make_unique<Impl>()) {}

ViGEmPad::~ViGEmPad() {
  neutral();
  impl_->close();
}

void ViGEmPad::update(std::uint16_t buttons, std::uint8_t lt, std::uint8_t rt, std::int16_t lx, std::int16_t ly,
                      std::int16_t rx, std::int16_t ry) {
  const XusbReport r{buttons, lt, rt, lx, ly, rx, ry};
  const unsigned long e = impl_->update(impl_->client, impl_->target, r);
  if (e != kVigemOk) throw CaptureError("ViGEmBus refused a pad report (error 0x" + Impl::hex(e) + ")");
}

void ViGEmPad::neutral() noexcept {
  if (!impl_->added) return;
  const XusbReport r{0, 0, 0, 0, 0, 0, 0};
  impl_->update(impl_->client, impl_->target, r);
}

}  // namespace engine
