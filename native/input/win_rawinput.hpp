// Windows input listener (input/listener.hpp): raw input (WM_INPUT) for keyboards and mice,
// received by a message-only window (HWND_MESSAGE) in a native thread with RIDEV_INPUTSINK, so
// events arrive whatever window has the focus, SendInput-injected ones included. Timestamped on the
// engine's monotonic clock (QueryPerformanceCounter) on arrival. Not a low-level hook: Windows
// silently unhooks WH_KEYBOARD_LL hooks that answer slowly, raw input has no such timeout.
//
// Privacy (the Listener's): only the configured actions and hotkeys are mapped, by scan code as the
// action table gives them; typematic repeats are dropped.
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
  RawInputListener(const std::vector<std::string>& actions, const std::vector<std::string>& hotkeys,
                   std::size_t capacity = 65536);
  ~RawInputListener() override;

  // Starts the thread and returns once raw input is registered; throws CaptureError if Windows
  // refused (the thread has then ended).
  void start() override;
  // Idempotent; returns once the thread has unregistered and ended.
  void stop() override;

 private:
  void run();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace engine
