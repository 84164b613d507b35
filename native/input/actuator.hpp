// What every actuator is (XTestActuator on X11, SendInputActuator on Windows): it presses and
// releases the configured actions, sending only changes, and holds nothing once released. Every key
// it holds is released by release_all() and by its destructor, so no exit path of the owner can
// leave a key stuck down.
//
// The same names on every OS: `held()` is what this actuator holds; `system_held()` is what the
// system (the X server, or Windows) believes is down, whoever pressed it; `release_system_held()`
// releases those (the crash watchdog's tool: injected presses outlive the process that sent them).
//
// Thread contract: one thread at a time (the play loop); held() may be read from any thread.
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
};

}  // namespace engine
