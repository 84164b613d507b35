#include "input/win_rawinput.hpp"

#include "common/win32.hpp"

#include <xinput.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "input/action_table.hpp"

namespace engine {

namespace {

constexpr UINT kStopMessage = WM_APP + 1;
constexpr wchar_t kClassName[] = L"engine.RawInputListener";

// HID usages of the generic desktop page: 0x02 mouse, 0x06 keyboard.
// https://learn.microsoft.com/windows/win32/inputdev/about-raw-input
constexpr USHORT kUsagePageGeneric = 0x01, kUsageMouse = 0x02, kUsageKeyboard = 0x06;

// The window procedure is DefWindowProcW: WM_INPUT is handled in the message loop (it is posted),
// and DefWindowProcW must still see it to free the input (RIM_INPUT).
ATOM register_class() {
  static const ATOM atom = [] {
    WNDCLASSEXW wc{};
    wc.cbSize = sizeof wc;
    wc.lpfnWndProc = DefWindowProcW;
    wc.hInstance = GetModuleHandleW(nullptr);
    wc.lpszClassName = kClassName;
    return RegisterClassExW(&wc);
  }();
  return atom;
}

std::string last_error_str(const char* call) {
  return std::string(call) + " failed (error " + std::to_string(GetLastError()) + ")";
}

// Mouse button transitions in RAWMOUSE::usButtonFlags, with the VK_*BUTTON the action table uses.
struct ButtonBits {
  USHORT down, up;
  int vk;
};
constexpr ButtonBits kButtons[] = {
    {RI_MOUSE_LEFT_BUTTON_DOWN, RI_MOUSE_LEFT_BUTTON_UP, VK_LBUTTON},
    {RI_MOUSE_RIGHT_BUTTON_DOWN, RI_MOUSE_RIGHT_BUTTON_UP, VK_RBUTTON},
    {RI_MOUSE_MIDDLE_BUTTON_DOWN, RI_MOUSE_MIDDLE_BUTTON_UP, VK_MBUTTON},
};

// The axes this listener reports: raw input mouse motion and wheel, XInput pad sticks and triggers.
enum WinAxis { kDx, kDy, kWheel, kLx, kLy, kRx, kRy, kLt, kRt, kWinAxes };
constexpr const char* kWinAxisNames[kWinAxes] = {"mouse_dx", "mouse_dy", "wheel", "pad_lx", "pad_ly",
                                                 "pad_rx", "pad_ry", "pad_lt", "pad_rt"};
constexpr DWORD kPads = XUSER_MAX_COUNT;
constexpr std::int32_t kPadDevice = 16;  // XInput user index i is source device 16 + i
constexpr DWORD kPadPollMs = 4;          // 250 Hz: finer than the frame rates games are recorded at
constexpr ULONGLONG kPadRescanMs = 1000;
constexpr DWORD kHighResolutionTimer = 0x00000002;  // CREATE_WAITABLE_TIMER_HIGH_RESOLUTION (newer SDKs only)  // a disconnected slot is asked again this often (the call is slow)

using XInputGetStateFn = DWORD(WINAPI*)(DWORD, XINPUT_STATE*);

// XInput is loaded when a pad is configured only, so the module does not need it otherwise.
XInputGetStateFn load_xinput() {
  for (const wchar_t* dll : {L"xinput1_4.dll", L"xinput1_3.dll", L"xinput9_1_0.dll"}) {
    if (HMODULE h = LoadLibraryW(dll)) {
      if (auto f = reinterpret_cast<XInputGetStateFn>(reinterpret_cast<void*>(GetProcAddress(h, "XInputGetState")))) {
        return f;
      }
      FreeLibrary(h);
    }
  }
  return nullptr;
}

// A stick axis in [-1, 1] outside its dead zone (rescaled so the edge of the zone is 0), as evdev's flat.
float stick(SHORT v, int dead) {
  const double x = v < 0 ? v / 32768.0 : v / 32767.0;
  const double d = dead / 32767.0;
  const double m = std::fabs(x) <= d ? 0.0 : (std::fabs(x) - d) / (1.0 - d);
  return static_cast<float>(std::copysign(std::fmin(m, 1.0), x));
}

float trigger(BYTE v) {
  const int t = XINPUT_GAMEPAD_TRIGGER_THRESHOLD;
  return v <= t ? 0.0f : static_cast<float>((v - t) / (255.0 - t));
}

}  // namespace

struct RawInputListener::Impl {
  // 0: ignore, > 0: action + 1, < 0: -(hotkey + 1).
  std::array<std::int16_t, 512> by_scan{};  // index: make code | 0x100 for E0-prefixed keys
  std::array<std::int16_t, 256> by_vk{};    // keys whose raw event carries no make code; mouse buttons
  std::atomic<HWND> hwnd{nullptr};  // created and destroyed by the thread; stop() posts to it
  std::array<std::int16_t, kWinAxes> axis_of{-1, -1, -1, -1, -1, -1, -1, -1, -1};  // -1: not configured
  struct PadButton {
    WORD mask;
    std::int16_t code;
  };
  std::vector<PadButton> pad_buttons;  // configured pad buttons (actions or hotkeys)
  bool pads = false;                   // a pad button or axis is configured: XInput is polled
  XInputGetStateFn get_state = nullptr;
  // Per XInput slot: connected, the last packet seen, the last axis values sent, when last asked.
  std::array<bool, kPads> connected{};
  std::array<DWORD, kPads> packet{};
  std::array<std::array<float, kWinAxes>, kPads> pad_value{};
  std::array<ULONGLONG, kPads> asked{};
  std::int64_t polled_ns = 0;  // monotonic_ns() when the slots were last polled
  // Absolute mice (remote desktop, VMs): the last position per device class, for deltas.
  LONG abs_x = 0, abs_y = 0;
  bool has_abs = false;

  Impl(const std::vector<std::string>& actions, const std::vector<std::string>& hotkeys,
       const std::vector<std::string>& axes) {
    auto map = [&](const std::string& name, std::int16_t code) {
      const ActionKey& a = require_action(name);
      if (is_pad_button(a)) {
        for (const auto& b : pad_buttons) {
          if (b.mask == a.xinput_mask) throw InvalidArgument("'" + name + "' is configured twice (as an action and a hotkey?)");
        }
        pad_buttons.push_back({static_cast<WORD>(a.xinput_mask), code});
        pads = true;
        return;
      }
      std::int16_t* slot = a.win_scan ? &by_scan[static_cast<std::size_t>(a.win_scan) | (a.win_extended ? 0x100u : 0u)]
                                      : &by_vk[static_cast<std::size_t>(a.win_vk) & 0xff];
      if (*slot != 0) throw InvalidArgument("'" + name + "' is configured twice (as an action and a hotkey?)");
      *slot = code;
      if (a.win_scan) by_vk[static_cast<std::size_t>(a.win_vk) & 0xff] = code;
    };
    for (std::size_t i = 0; i < actions.size(); ++i) map(actions[i], static_cast<std::int16_t>(i + 1));
    for (std::size_t h = 0; h < hotkeys.size(); ++h) {
      map(hotkeys[h], static_cast<std::int16_t>(-(static_cast<int>(h) + 1)));
    }
    for (std::size_t i = 0; i < axes.size(); ++i) {
      int k = 0;
      while (k < kWinAxes && axes[i] != kWinAxisNames[k]) ++k;
      if (k == kWinAxes) {
        throw InvalidArgument("axis '" + axes[i] + "' is not recorded on Windows; valid: mouse_dx, mouse_dy, wheel, "
                              "pad_lx, pad_ly, pad_rx, pad_ry, pad_lt, pad_rt");
      }
      if (axis_of[static_cast<std::size_t>(k)] >= 0) throw InvalidArgument("axis '" + axes[i] + "' is configured twice");
      axis_of[static_cast<std::size_t>(k)] = static_cast<std::int16_t>(i);
      pads = pads || k >= kLx;
    }
  }

  // Raw mouse motion (counts, unaccelerated) and wheel notches of one WM_INPUT, as (axis, value) pairs.
  template <typename Emit>
  void mouse_axes(const RAWMOUSE& m, Emit&& emit_axis) {
    LONG dx = m.lLastX, dy = m.lLastY;
    if (m.usFlags & MOUSE_MOVE_ABSOLUTE) {  // 0..65535 positions (remote desktop, tablets): differences
      const LONG x = m.lLastX, y = m.lLastY;
      dx = has_abs ? x - abs_x : 0;
      dy = has_abs ? y - abs_y : 0;
      abs_x = x, abs_y = y, has_abs = true;
    }
    if (axis_of[kDx] >= 0 && dx != 0) emit_axis(axis_of[kDx], static_cast<float>(dx));
    if (axis_of[kDy] >= 0 && dy != 0) emit_axis(axis_of[kDy], static_cast<float>(dy));
    if (axis_of[kWheel] >= 0 && (m.usButtonFlags & RI_MOUSE_WHEEL)) {
      // usButtonData is a signed multiple of WHEEL_DELTA per notch (finer on high-resolution wheels).
      emit_axis(axis_of[kWheel], static_cast<float>(static_cast<SHORT>(m.usButtonData)) / WHEEL_DELTA);
    }
  }

  // Keyboard: the make code (with the E0 flag) identifies the key as the action table does. Events
  // without a make code (some injected ones) fall back to the virtual key; the generic VK_SHIFT /
  // VK_CONTROL / VK_MENU are made left or right by the E0 flag.
  std::int16_t key_code(const RAWKEYBOARD& k) const {
    if (k.Flags & RI_KEY_E1) return 0;  // Pause/Break: not in the table
    const bool e0 = (k.Flags & RI_KEY_E0) != 0;
    if (k.MakeCode != 0 && k.MakeCode < 0x100) {
      return by_scan[static_cast<std::size_t>(k.MakeCode) | (e0 ? 0x100u : 0u)];
    }
    unsigned vk = k.VKey;
    if (vk == VK_SHIFT) vk = VK_LSHIFT;
    if (vk == VK_CONTROL) vk = e0 ? VK_RCONTROL : VK_LCONTROL;
    if (vk == VK_MENU) vk = e0 ? VK_RMENU : VK_LMENU;
    return vk < by_vk.size() ? by_vk[vk] : 0;
  }
};

RawInputListener::RawInputListener(const std::vector<std::string>& actions, const std::vector<std::string>& hotkeys,
                                   std::size_t capacity, const std::vector<std::string>& axes)
    : Listener(actions.size(), hotkeys.size(), capacity, axes.size()),
      impl_(std::make_unique<Impl>(actions, hotkeys, axes)) {}

RawInputListener::~RawInputListener() { stop(); }

void RawInputListener::start() {
  if (thread_.joinable()) throw InvalidArgument("listener already started");
  std::promise<std::string> ready;
  std::future<std::string> started = ready.get_future();
  running_.store(true, std::memory_order_release);
  thread_ = std::thread([this, p = std::move(ready)]() mutable {
    // The window must belong to the thread that pumps its messages.
    if (register_class() == 0) {
      p.set_value(last_error_str("RegisterClassExW"));
      running_.store(false, std::memory_order_release);
      return;
    }
    const HWND hwnd = CreateWindowExW(0, kClassName, L"", 0, 0, 0, 0, 0, HWND_MESSAGE, nullptr,
                                      GetModuleHandleW(nullptr), nullptr);
    if (hwnd == nullptr) {
      p.set_value(last_error_str("CreateWindowExW(HWND_MESSAGE)"));
      running_.store(false, std::memory_order_release);
      return;
    }
    // RIDEV_INPUTSINK: deliver even when this (invisible) window is not in the foreground.
    // https://learn.microsoft.com/windows/win32/api/winuser/ns-winuser-rawinputdevice
    const RAWINPUTDEVICE rid[2] = {{kUsagePageGeneric, kUsageKeyboard, RIDEV_INPUTSINK, hwnd},
                                   {kUsagePageGeneric, kUsageMouse, RIDEV_INPUTSINK, hwnd}};
    if (!RegisterRawInputDevices(rid, 2, sizeof(RAWINPUTDEVICE))) {
      p.set_value(last_error_str("RegisterRawInputDevices"));
      DestroyWindow(hwnd);
      running_.store(false, std::memory_order_release);
      return;
    }
    if (impl_->pads && (impl_->get_state = load_xinput()) == nullptr) {
      p.set_value("XInput (xinput1_4.dll) is not installed: gamepads cannot be read");
      DestroyWindow(hwnd);
      running_.store(false, std::memory_order_release);
      return;
    }
    impl_->hwnd.store(hwnd, std::memory_order_release);
    p.set_value({});
    run();
  });
  const std::string err = started.get();
  if (!err.empty()) {
    thread_.join();
    throw CaptureError("cannot listen to raw input: " + err);
  }
}

void RawInputListener::stop() {
  if (thread_.joinable()) {
    // A thread that already ended (GetMessageW failed) has cleared hwnd; posting to a destroyed
    // window would fail harmlessly anyway.
    if (const HWND h = impl_->hwnd.load(std::memory_order_acquire)) PostMessageW(h, kStopMessage, 0, 0);
    thread_.join();
  }
  running_.store(false, std::memory_order_release);
}

void RawInputListener::poll_pads() {
  Impl& im = *impl_;
  const ULONGLONG now_ms = GetTickCount64();
  const std::int64_t now = monotonic_ns();
  for (DWORD i = 0; i < kPads; ++i) {
    if (!im.connected[i] && now_ms - im.asked[i] < kPadRescanMs && im.asked[i] != 0) continue;
    im.asked[i] = now_ms;
    XINPUT_STATE st;
    std::memset(&st, 0, sizeof st);
    const std::int32_t device = kPadDevice + static_cast<std::int32_t>(i);
    if (im.get_state(i, &st) != ERROR_SUCCESS) {
      if (im.connected[i]) {  // unplugged: as if everything was let go
        std::memset(&st, 0, sizeof st);
        im.connected[i] = false;
      } else {
        continue;
      }
    } else {
      if (im.connected[i] && st.dwPacketNumber == im.packet[i]) continue;  // nothing changed
      im.connected[i] = true;
      im.packet[i] = st.dwPacketNumber;
    }
    const XINPUT_GAMEPAD& g = st.Gamepad;
    for (const auto& b : im.pad_buttons) emit(now, b.code, (g.wButtons & b.mask) != 0, device, false);
    // XInput's y is up-positive; the engine's pad_ly/pad_ry are down-positive like evdev's ABS_Y.
    const float v[kWinAxes] = {0, 0, 0,
                               stick(g.sThumbLX, XINPUT_GAMEPAD_LEFT_THUMB_DEADZONE),
                               -stick(g.sThumbLY, XINPUT_GAMEPAD_LEFT_THUMB_DEADZONE),
                               stick(g.sThumbRX, XINPUT_GAMEPAD_RIGHT_THUMB_DEADZONE),
                               -stick(g.sThumbRY, XINPUT_GAMEPAD_RIGHT_THUMB_DEADZONE),
                               trigger(g.bLeftTrigger), trigger(g.bRightTrigger)};
    for (int k = kLx; k < kWinAxes; ++k) {
      if (im.axis_of[static_cast<std::size_t>(k)] < 0 || v[k] == im.pad_value[i][static_cast<std::size_t>(k)]) continue;
      im.pad_value[i][static_cast<std::size_t>(k)] = v[k];
      emit_axis(now, im.axis_of[static_cast<std::size_t>(k)], v[k], device, false);
    }
  }
}

void RawInputListener::run() {
  Impl& im = *impl_;
  const HWND hwnd = im.hwnd.load(std::memory_order_relaxed);
  MSG msg;
  // Pads: a periodic waitable timer, high-resolution where Windows has it (10 1803+; as the Pacer's).
  HANDLE timer = nullptr;
  if (im.pads) {
    timer = CreateWaitableTimerExW(nullptr, nullptr, kHighResolutionTimer, TIMER_ALL_ACCESS);
    if (timer == nullptr) timer = CreateWaitableTimerExW(nullptr, nullptr, 0, TIMER_ALL_ACCESS);
    LARGE_INTEGER due;
    due.QuadPart = -static_cast<LONGLONG>(kPadPollMs) * 10'000;  // relative, 100 ns units
    if (timer != nullptr && !SetWaitableTimer(timer, &due, static_cast<LONG>(kPadPollMs), nullptr, nullptr, FALSE)) {
      CloseHandle(timer);
      timer = nullptr;
    }
  }
  for (;;) {
    if (im.pads) {
      // XInput has no events: poll it every few ms between messages (XInputGetState is cheap for a
      // connected pad; a disconnected slot is asked once a second), not on every message of a 1000 Hz
      // mouse.
      const std::int64_t now = monotonic_ns();
      if (now - im.polled_ns >= kPadPollMs * 1'000'000LL) {
        im.polled_ns = now;
        poll_pads();
      }
      if (PeekMessageW(&msg, nullptr, 0, 0, PM_REMOVE) == 0) {
        // The periodic timer wakes the thread every kPadPollMs; a plain wait's timeout would round up
        // to the system timer's 15.6 ms.
        if (timer != nullptr) {
          MsgWaitForMultipleObjectsEx(1, &timer, INFINITE, QS_ALLINPUT, MWMO_INPUTAVAILABLE);
        } else {
          MsgWaitForMultipleObjectsEx(0, nullptr, kPadPollMs, QS_ALLINPUT, MWMO_INPUTAVAILABLE);
        }
        continue;
      }
      if (msg.message == WM_QUIT) break;
    } else {
      const BOOL got = GetMessageW(&msg, nullptr, 0, 0);
      if (got == 0) break;  // WM_QUIT
      if (got == -1) {
        set_error(last_error_str("GetMessageW"));
        break;
      }
    }
    if (msg.hwnd == hwnd && msg.message == kStopMessage) break;
    if (msg.message == WM_INPUT) {
      const std::int64_t now = monotonic_ns();
      RAWINPUT ri;
      UINT size = sizeof ri;
      // Keyboard and mouse reports always fit one RAWINPUT; anything larger is not ours.
      // https://learn.microsoft.com/windows/win32/api/winuser/nf-winuser-getrawinputdata
      const UINT n = GetRawInputData(reinterpret_cast<HRAWINPUT>(msg.lParam), RID_INPUT, &ri, &size,
                                     sizeof(RAWINPUTHEADER));
      if (n != static_cast<UINT>(-1) && n >= sizeof(RAWINPUTHEADER)) {
        // emit() drops what is not configured, and typematic repeats. Input injected by SendInput
        // arrives with a null device handle: that is the engine's (or another program's) injection,
        // never the person's hardware. https://learn.microsoft.com/windows/win32/api/winuser/ns-winuser-rawinputheader
        const bool injected = ri.header.hDevice == nullptr;
        const std::int32_t device = injected ? 0 : 1;
        if (ri.header.dwType == RIM_TYPEKEYBOARD) {
          emit(now, im.key_code(ri.data.keyboard), (ri.data.keyboard.Flags & RI_KEY_BREAK) == 0, device, injected);
        } else if (ri.header.dwType == RIM_TYPEMOUSE) {
          im.mouse_axes(ri.data.mouse, [&](std::int16_t axis, float value) {
            emit_axis(now, axis, value, device, injected);
          });
          const USHORT f = ri.data.mouse.usButtonFlags;
          for (const auto& b : kButtons) {
            if (f & b.down) emit(now, im.by_vk[static_cast<std::size_t>(b.vk)], true, device, injected);
            if (f & b.up) emit(now, im.by_vk[static_cast<std::size_t>(b.vk)], false, device, injected);
          }
        }
      }
    }
    DispatchMessageW(&msg);  // DefWindowProcW cleans up after WM_INPUT
  }
  // Removal takes a null target window.
  const RAWINPUTDEVICE rid[2] = {{kUsagePageGeneric, kUsageKeyboard, RIDEV_REMOVE, nullptr},
                                 {kUsagePageGeneric, kUsageMouse, RIDEV_REMOVE, nullptr}};
  RegisterRawInputDevices(rid, 2, sizeof(RAWINPUTDEVICE));
  im.hwnd.store(nullptr, std::memory_order_release);
  if (timer != nullptr) CloseHandle(timer);
  DestroyWindow(hwnd);
  running_.store(false, std::memory_order_release);
}

}  // namespace engine
