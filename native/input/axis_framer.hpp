// Per-frame axis values from timestamped axis events (a session's axes.npy), in native code: the
// recorder's framer, fed straight from a listener's axis queue (engine._native.Listener.pop_axes_into)
// or from arrays (the evdev input, tests).
//
// For frames captured at t[0] < t[1] < ...: a relative axis' value for frame i is the sum of its deltas
// over (t[i-1], t[i]] (frame 0: since the last skip() marked the start), each event counted exactly once
// however the frames and events are batched; an absolute axis' value is the last value at or before
// t[i] (its neutral value before any). An event that arrives after the frame it belongs to was framed
// (a late one) counts in the next frame framed. Relative motion inside a skip()ped span (before capture
// started, paused) belongs to no frame, also when its events arrive later. Sums are taken in double, so
// integer counts stay exact. Events after the last frame stay queued, in time order.
//
// Why native: a 1000 Hz mouse brings ~200 events per recorder wake-up, 10 wake-ups a second, each into
// cold caches; the NumPy version (a dozen calls per batch) cost the recorder 2.5 ms/s, this ~0.1 ms/s.
//
// Not thread-safe: one consumer thread (the recorder's writer) owns it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace engine {

class AxisFramer {
 public:
  // relative[k]: axis k is relative (deltas summed per frame), else absolute (a value held); neutral[k]:
  // an absolute axis' value before its first event (ignored for relative axes).
  AxisFramer(std::vector<bool> relative, std::vector<double> neutral)
      : relative_(std::move(relative)), state_(std::move(neutral)) {
    if (relative_.size() != state_.size()) throw InvalidArgument("AxisFramer needs one neutral value per axis");
    row_.resize(relative_.size());
  }

  std::size_t n_axes() const { return relative_.size(); }
  // Events waiting for their frame.
  std::size_t queued() const { return q_.size() - head_; }

  // What the session's axis log may hold: t_ns > 0, axis in [0, K), a finite value.
  bool accepts(std::int64_t t_ns, std::int64_t axis, float value) const {
    return t_ns > 0 && axis >= 0 && static_cast<std::size_t>(axis) < relative_.size() && std::isfinite(value);
  }

  // Queue one event if accepts() it (returns whether it did). Call sorted() after a batch.
  bool push(std::int64_t t_ns, std::int16_t axis, float value) {
    if (!accepts(t_ns, axis, value)) return false;
    if (relative_[static_cast<std::size_t>(axis)] && skipped(t_ns)) return true;  // logged, in no frame
    if (q_.size() > head_ && t_ns < q_.back().t_ns) unsorted_ = true;
    q_.push_back(Event{t_ns, value, axis});
    return true;
  }

  // After push()es: events out of time order (several devices) are sorted in, stably.
  void sorted() {
    if (!unsorted_) return;
    std::stable_sort(q_.begin() + static_cast<std::ptrdiff_t>(head_), q_.end(),
                     [](const Event& a, const Event& b) { return a.t_ns < b.t_ns; });
    unsorted_ = false;
  }

  // Relative motion in (t0, t1] is in no frame, also if its events arrive later; absolute values there
  // still set the state.
  void skip(std::int64_t t0, std::int64_t t1) {
    skips_.emplace_back(t0, t1);
    std::size_t out = head_;
    for (std::size_t i = head_; i < q_.size(); ++i) {
      const Event& e = q_[i];
      if (!(relative_[static_cast<std::size_t>(e.axis)] && e.t_ns > t0 && e.t_ns <= t1)) q_[out++] = e;
    }
    q_.resize(out);
  }

  // Fold queued events at or before t_ns into the state (for when no frame can come before t_ns:
  // waiting for the start hotkey, paused): memory stays flat meanwhile.
  void settle(std::int64_t t_ns) {
    while (head_ < q_.size() && q_[head_].t_ns <= t_ns) {
      const Event& e = q_[head_++];
      if (!relative_[static_cast<std::size_t>(e.axis)]) state_[static_cast<std::size_t>(e.axis)] = e.value;
    }
    compact();
  }

  // Axis values for k frames captured at t (increasing), continuing from the last call, into out
  // (k rows of n_axes() floats).
  void frame(const std::int64_t* t, std::size_t k, float* out) {
    const std::size_t n_axes = relative_.size();
    std::size_t i = head_;
    for (std::size_t j = 0; j < k; ++j) {
      std::fill(row_.begin(), row_.end(), 0.0);
      for (; i < q_.size() && q_[i].t_ns <= t[j]; ++i) {
        const auto a = static_cast<std::size_t>(q_[i].axis);
        if (relative_[a]) {
          row_[a] += q_[i].value;
        } else {
          state_[a] = q_[i].value;
        }
      }
      for (std::size_t a = 0; a < n_axes; ++a) {
        out[j * n_axes + a] = static_cast<float>(relative_[a] ? row_[a] : state_[a]);
      }
    }
    head_ = i;
    compact();
    if (k > 0) {  // a skip ending at or before the last frame can match no queued or later event
      const std::int64_t last = t[k - 1];
      skips_.erase(std::remove_if(skips_.begin(), skips_.end(), [last](const auto& s) { return s.second <= last; }),
                   skips_.end());
    }
  }

 private:
  struct Event {
    std::int64_t t_ns;
    float value;
    std::int16_t axis;
  };

  bool skipped(std::int64_t t_ns) const {
    return std::any_of(skips_.begin(), skips_.end(),
                       [t_ns](const auto& s) { return t_ns > s.first && t_ns <= s.second; });
  }

  // Drop what was consumed once it is most of the buffer (amortised O(1) per event).
  void compact() {
    if (head_ == q_.size()) {
      q_.clear();
      head_ = 0;
    } else if (head_ > 4096 && head_ * 2 > q_.size()) {
      q_.erase(q_.begin(), q_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  std::vector<bool> relative_;
  std::vector<double> state_;  // absolute axes' values
  std::vector<double> row_;    // one frame's sums (scratch)
  std::vector<Event> q_;       // queued events from head_ on, in time order after sorted()
  std::size_t head_ = 0;
  bool unsorted_ = false;
  std::vector<std::pair<std::int64_t, std::int64_t>> skips_;  // (t0, t1]
};

}  // namespace engine
