#include "input/win_rawinput.hpp"

#include "common/win32.hpp"

#include <array>
#include <atomic>
#include <future>

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

}  // namespace

struct RawInputListener::Impl {
  // 0: ignore, > 0: action + 1, < 0: -(hotkey + 1).
  std::array<std::int16_t, 512> by_scan{};  // index: make code | 0x100 for E0-prefixed keys
  std::array<std::int16_t, 256> by_vk{};    // keys whose raw event carries no make code; mouse buttons
  std::atomic<HWND> hwnd{nullptr};  // created and destroyed by the thread; stop() posts to it

  Impl(const std::vector<std::string>& actions, const std::vector<std::string>& hotkeys) {
    auto map = [&](const std::string& name, std::int16_t code) {
      const ActionKey& a = require_action(name);
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
                                   std::size_t capacity)
    : Listener(actions.size(), hotkeys.size(), capacity), impl_(std::make_unique<Impl>(actions, hotkeys)) {}

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

void RawInputListener::run() {
  Impl& im = *impl_;
  const HWND hwnd = im.hwnd.load(std::memory_order_relaxed);
  MSG msg;
  for (;;) {
    const BOOL got = GetMessageW(&msg, nullptr, 0, 0);
    if (got == 0) break;  // WM_QUIT
    if (got == -1) {
      set_error(last_error_str("GetMessageW"));
      break;
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
  DestroyWindow(hwnd);
  running_.store(false, std::memory_order_release);
}

}  // namespace engine
