// What every actuator is (XTestActuator on X11, SendInputActuator on Windows): it presses and
// releases the configured actions, sending only changes, and holds nothing once released. Every key
// it holds is released by release_all() and by its destructor, so no exit path of the owner can
// leave a key stuck down.
//
// The same names on every OS: `held()` is what this actuator holds; `system_held()` is what the
// system (the X server, or Windows) believes is down, whoever pressed it; `release_system_held()`
// releases those (the crash watchdog's tool: injected presses outlive the process that sent them).
//
// Mouse motion (issue 14): move() sends relative motion and wheel notches, warp() puts the pointer at
// an absolute screen position. Motion holds nothing (there is no "release" of a move), so the exit
// paths stop it by not sending more: the spreading of a decision over the frame period is the
// caller's (engine.actions.outputs), which drops what is still in flight on release_all().
//
// Thread contract: one thread at a time for keys (the play loop); move() and warp() may be called from
// one other thread (the caller's motion scheduler) at the same time: the actuator serialises its own
// use of the connection. held() may be read from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace engine {

class Actuator {
 public:
  virtual ~Actuator() = default;

  // Bring the held set to `state` (one byte per action, nonzero = held): sends only the differences,
  // releases first. Returns the number of events sent. Throws InvalidArgument when n != size().
  virtual int apply(const std::uint8_t* state, std::size_t n) = 0;
  virtual void set(std::size_t action, bool down) = 0;
  // Release everything held. Returns the number of events sent. Safe to call repeatedly.
  virtual int release_all() = 0;
  virtual std::vector<bool> held() const = 0;
  // Per configured action: does the system have it down (from any source)? The ground truth tests
  // compare against.
  virtual std::vector<bool> system_held() = 0;
  // Release every configured action system_held() reports down. Returns the number released.
  virtual int release_system_held() = 0;
  virtual std::size_t size() const = 0;
  // Relative pointer motion (device units) and wheel notches (> 0: away from the user, "up"), sent as
  // they are (no acceleration asked for; the system may still apply its own to the pointer). Returns
  // the number of events sent.
  virtual int move(int dx, int dy, int wheel) = 0;
  // The pointer to absolute screen pixel (x, y) (X11: root window; Windows: virtual desktop).
  virtual void warp(int x, int y) = 0;
};

}  // namespace engine
