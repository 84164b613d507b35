// Windows input listener: raw input (WM_INPUT) for keyboards and mice, received by a message-only
// window (HWND_MESSAGE) in a native thread with RIDEV_INPUTSINK, so events arrive whatever window
// has the focus, SendInput-injected ones included. Timestamped on the engine's monotonic clock
// (QueryPerformanceCounter) on arrival. Not a low-level hook: Windows silently unhooks
// WH_KEYBOARD_LL hooks that answer slowly, raw input has no such timeout.
//
// Privacy: only the configured actions and hotkeys are mapped (by scan code, as the action table
// gives them); every other key is dropped inside this thread and never leaves native code.
// Repeated presses of a held key (typematic repeat) are dropped too: the log holds transitions.
//
// Raw input is registered per process and device class: a second listener (or another raw-input
// user in the same process, e.g. SDL's relative mouse mode) takes the registration over.
//
// Thread contract: start()/stop() from the owner; pop()/wait() from one consumer thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "input/x11_listener.hpp"  // InputEvent (that header has no X11 includes)
#include "ring/spsc_queue.hpp"

namespace engine {

class RawInputListener {
 public:
  // Throws InvalidArgument for an unknown or twice-configured name.
  RawInputListener(const std::vector<std::string>& actions, const std::vector<std::string>& hotkeys,
                   std::size_t capacity = 65536);
  ~RawInputListener();
  RawInputListener(const RawInputListener&) = delete;
  RawInputListener& operator=(const RawInputListener&) = delete;

  // Starts the thread and returns once raw input is registered; throws CaptureError if Windows
  // refused (the thread has then ended).
  void start();
  // Idempotent; returns once the thread has unregistered and ended.
  void stop();
  std::size_t pop(InputEvent* out, std::size_t max) { return queue_.pop(out, max); }
  void wait(std::int64_t timeout_ns) { queue_.wait(timeout_ns); }
  std::uint64_t dropped() const { return queue_.dropped(); }
  bool running() const { return running_.load(std::memory_order_acquire); }
  std::string error() const;

 private:
  void run();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  SpscQueue<InputEvent> queue_;
  std::thread thread_;
  std::atomic<bool> running_{false};
};

}  // namespace engine
