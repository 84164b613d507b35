// Windows input listener (input/listener.hpp): raw input (WM_INPUT) for keyboards and mice,
// received by a message-only window (HWND_MESSAGE) in a native thread with RIDEV_INPUTSINK, so
// events arrive whatever window has the focus, SendInput-injected ones included. Timestamped on the
// engine's monotonic clock (QueryPerformanceCounter) on arrival. Not a low-level hook: Windows
// silently unhooks WH_KEYBOARD_LL hooks that answer slowly, raw input has no such timeout.
//
// Privacy (the Listener's): only the configured actions and hotkeys are mapped, by scan code as the
// action table gives them; typematic repeats are dropped.
//
// Axes (only those configured): mouse_dx/mouse_dy from RAWMOUSE lLastX/lLastY (counts, before pointer
// ballistics; an absolute-position mouse gives differences), wheel from RI_MOUSE_WHEEL (usButtonData /
// WHEEL_DELTA: 1 per notch, fractions on high-resolution wheels); the gamepad's sticks, triggers and
// buttons from XInput (XInputGetState), which has no events: the listener thread polls every 4 ms
// between messages when a pad button or axis is configured (sticks and triggers with XInput's dead
// zones, y down-positive like evdev). Pad i's source device is 16 + i, never flagged injected: a ViGEm
// virtual pad looks like a real one, so takeover must know which slot the engine's own pad took.
//
// Raw input is registered per process and device class: a second listener (or another raw-input
// user in the same process, e.g. SDL's relative mouse mode) takes the registration over.
//
// Thread contract: the Listener's.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "input/listener.hpp"

namespace engine {

class RawInputListener final : public Listener {
 public:
  // Throws InvalidArgument for an unknown or twice-configured name.
  // axes: any of mouse_dx, mouse_dy, wheel, pad_lx, pad_ly, pad_rx, pad_ry, pad_lt, pad_rt.
  RawInputListener(const std::vector<std::string>& actions, const std::vector<std::string>& hotkeys,
                   std::size_t capacity = 65536, const std::vector<std::string>& axes = {});
  ~RawInputListener() override;

  // Starts the thread and returns once raw input is registered; throws CaptureError if Windows
  // refused, or a pad is configured and XInput is missing (the thread has then ended).
  void start() override;
  // Idempotent; returns once the thread has unregistered and ended.
  void stop() override;

 private:
  void run();
  void poll_pads();  // listener thread: XInputGetState of every slot, changes to events

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace engine
