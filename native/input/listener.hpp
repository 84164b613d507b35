// What every input listener is (X11InputListener: XInput2 raw events; RawInputListener: Windows raw
// input): a native thread that turns the configured actions' and hotkeys' presses and releases into
// timestamped events on the engine's clock, in an SPSC queue one consumer drains. Every other key is
// dropped inside the listener thread and never leaves native code; repeats of a held key are dropped
// too, so the log holds state transitions only (per source device: the same key held on two devices
// is two held keys, so one device's repeat never hides another's press).
//
// Every event carries its source device, so a person's input can be told from the engine's own
// injected input by where it came from, never by timing: on X11 the XInput2 slave that produced it
// (XIRawEvent.sourceid) and whether that slave is an XTest device; on Windows the raw input device
// handle (null for injected input) and the injected flag.
//
// Axes (mouse motion, wheel, pointer position, pad sticks) travel in a second SPSC queue of AxisEvents,
// only for the axes the owner configured (the axis index is the position in that list): a relative
// axis' event holds a delta (mouse counts, wheel notches), an absolute axis' event its new value. Every
// event is queued as it came, never coalesced, so the session's axis log gets each one; the queue is
// bounded (capacity items: 65536 by default, 1.5 MB, 30 s of a 1000 Hz mouse's two axes between two
// drains that come every ~100 ms) and counts what it had to drop (axis_dropped()), so memory stays flat.
//
// Thread contract: start()/stop() from the owner; collect()/pop()/pop_axes()/wait() from one consumer
// thread; dropped()/axis_dropped()/running()/error() from any thread; emit()/emit_axis()/set_error()
// from the listener thread only, or from collect() under the listener's own lock (one producer at a
// time, the lock ordering them).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "ring/spsc_queue.hpp"

namespace engine {

struct InputEvent {
  std::int64_t t_ns;
  std::int32_t device;    // source device (X11: XInput2 slave id; Windows: 0 if injected, else 1)
  std::int16_t action;    // index into actions (>= 0), or -(h + 1) for hotkey h
  std::int8_t value;      // 1 press, 0 release
  std::uint8_t injected;  // 1: the source is an injection device (X11: an XTest slave; Windows: injected)
};
static_assert(sizeof(InputEvent) == 16, "InputEvent is two words");

struct AxisEvent {
  std::int64_t t_ns;
  float value;            // relative axis: the delta; absolute axis: the new value
  std::int32_t device;    // source device, as InputEvent's
  std::int16_t axis;      // index into the configured axes
  std::uint8_t injected;  // as InputEvent's
  std::uint8_t reserved = 0;
};
static_assert(sizeof(AxisEvent) == 24, "AxisEvent is three words");

class Listener {
 public:
  virtual ~Listener() = default;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Owner: starts the thread; throws InvalidArgument if already started, CaptureError if the OS
  // refused to deliver events.
  virtual void start() = 0;
  // Owner: idempotent; returns once the thread has ended.
  virtual void stop() = 0;

  // Consumer only: a listener that leaves events in the OS while they carry their own time
  // (X11InputListener with a motion axis) reads them now, in this thread, so what pop()/pop_axes()
  // return next is complete up to now; others do nothing. The bindings' pop and pop_axes call it.
  virtual void collect() {}
  // Consumer only: move up to max events to out; returns how many.
  std::size_t pop(InputEvent* out, std::size_t max) { return queue_.pop(out, max); }
  // Consumer only: move up to max axis events to out; returns how many.
  std::size_t pop_axes(AxisEvent* out, std::size_t max) { return axis_queue_.pop(out, max); }
  // Consumer only: sleep until an event may be ready or timeout_ns passes (< 0: forever). A listener
  // that leaves events to collect() queues them late while nobody collects (X11 with a motion axis:
  // up to 250 ms), so a consumer that waits for keys should poll on a period instead.
  void wait(std::int64_t timeout_ns) { queue_.wait(timeout_ns); }

  // Any thread.
  std::uint64_t dropped() const { return queue_.dropped(); }
  // Hotkey presses emitted so far (each counted once queued): a consumer that takes events on a slower
  // period can check this cheaply to answer a hotkey at once. A listener that leaves events to
  // collect() counts them only when collected.
  std::uint64_t hotkey_presses() const { return hotkey_presses_.load(std::memory_order_acquire); }
  std::uint64_t axis_dropped() const { return axis_queue_.dropped(); }
  std::size_t n_axes() const { return n_axes_; }
  bool running() const { return running_.load(std::memory_order_acquire); }
  // Why the thread ended on its own ("" while it runs or after a clean stop()).
  std::string error() const {
    std::lock_guard<std::mutex> lock(error_mutex_);
    return error_;
  }

 protected:
  // The axis queue takes `capacity` items only when axes are configured (one slot otherwise).
  Listener(std::size_t n_actions, std::size_t n_hotkeys, std::size_t capacity, std::size_t n_axes = 0)
      : queue_(capacity),
        axis_queue_(n_axes ? capacity : 1),
        n_slots_(n_actions + n_hotkeys),
        n_actions_(n_actions),
        n_axes_(n_axes) {}

  // Listener thread only: the key or button mapped to `code` (> 0: action code - 1; < 0: hotkey
  // -code - 1; 0: not configured, ignored) went down (press) or up at t_ns on source `device`.
  // Repeats on the same device are dropped.
  void emit(std::int64_t t_ns, std::int16_t code, bool press, std::int32_t device = 0, bool injected = false) {
    if (code == 0) return;  // not configured: never leaves the listener
    const std::int16_t action = code > 0 ? static_cast<std::int16_t>(code - 1) : code;
    const std::size_t slot =
        code > 0 ? static_cast<std::size_t>(code - 1) : n_actions_ + static_cast<std::size_t>(-code - 1);
    std::vector<bool>& down = down_[device];
    if (down.empty()) down.assign(n_slots_, false);
    if (down[slot] == press) return;  // auto-repeat or a duplicate
    down[slot] = press;
    queue_.push(InputEvent{t_ns, device, action, static_cast<std::int8_t>(press ? 1 : 0),
                           static_cast<std::uint8_t>(injected ? 1 : 0)});
    // After the push: a consumer that reads the new count and then pops finds the press.
    if (code < 0 && press) hotkey_presses_.fetch_add(1, std::memory_order_release);
  }

  // Listener thread only: configured axis `axis` moved (delta) or took a new value at t_ns.
  void emit_axis(std::int64_t t_ns, std::int16_t axis, float value, std::int32_t device, bool injected) {
    axis_queue_.push(AxisEvent{t_ns, value, device, axis, static_cast<std::uint8_t>(injected ? 1 : 0), 0});
  }

  // Listener thread only.
  void set_error(std::string what) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error_ = std::move(what);
  }

  std::atomic<bool> running_{false};  // set by start(), cleared when the thread ends

 private:
  SpscQueue<InputEvent> queue_;
  SpscQueue<AxisEvent> axis_queue_;
  std::atomic<std::uint64_t> hotkey_presses_{0};
  std::unordered_map<std::int32_t, std::vector<bool>> down_;  // per device: actions, then hotkeys; listener thread only
  const std::size_t n_slots_;
  const std::size_t n_actions_;
  const std::size_t n_axes_;
  mutable std::mutex error_mutex_;
  std::string error_;  // Protected by error_mutex_.
};

}  // namespace engine
