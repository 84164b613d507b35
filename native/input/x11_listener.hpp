// X11 input listener: XInput2 raw key and button events (what the devices did, whatever window has
// the focus; XTest-injected events arrive too), read in a native thread and timestamped on the
// engine's monotonic clock on arrival. No hook, no GIL, nothing that can time out.
//
// Privacy: only the configured actions and hotkeys are mapped; every other key is dropped inside
// this thread and never leaves native code. Repeated presses of a held key are dropped too, so the
// log holds state transitions only.
//
// Thread contract: start()/stop() from the owner; pop()/wait() from one consumer thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ring/spsc_queue.hpp"

namespace engine {

struct InputEvent {
  std::int64_t t_ns;
  std::int16_t action;  // index into actions (>= 0), or -(h + 1) for hotkey h
  std::int8_t value;    // 1 press, 0 release
};

class X11InputListener {
 public:
  X11InputListener(const std::string& display, const std::vector<std::string>& actions,
                   const std::vector<std::string>& hotkeys, std::size_t capacity = 65536);
  ~X11InputListener();
  X11InputListener(const X11InputListener&) = delete;
  X11InputListener& operator=(const X11InputListener&) = delete;

  void start();
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
