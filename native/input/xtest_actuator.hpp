// Presses and releases the configured actions on an X display through XTest, sending only changes.
// Every key it holds is released by release_all() and by the destructor, so no exit path of the
// owner can leave a key stuck down (the play loop also calls release_all() explicitly).
//
// Thread contract: one thread at a time (the play loop); held() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace engine {

class XTestActuator {
 public:
  XTestActuator(const std::string& display, const std::vector<std::string>& actions);
  ~XTestActuator();
  XTestActuator(const XTestActuator&) = delete;
  XTestActuator& operator=(const XTestActuator&) = delete;

  // Bring the held set to `state` (one byte per action, nonzero = held): sends only the differences,
  // releases first, then one flush. Returns the number of events sent.
  int apply(const std::uint8_t* state, std::size_t n);
  void set(std::size_t action, bool down);
  // Release everything held. Returns the number of events sent. Safe to call repeatedly.
  int release_all();
  std::vector<bool> held() const;
  // What the X server believes is down for each configured action (XQueryKeymap / pointer mask):
  // the ground truth tests compare against.
  std::vector<bool> server_state();
  // Release every configured action the X server has down, whoever pressed it: the crash watchdog's
  // tool, since XTest presses outlive the process that sent them. Returns the number released.
  int release_server_held();
  std::size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine
