// Presses and releases the configured actions on Windows through SendInput, sending only changes.
// Keys go as hardware scan codes (KEYEVENTF_SCANCODE, plus KEYEVENTF_EXTENDEDKEY for the E0 keys:
// arrows, right Ctrl/Alt), because games that read DirectInput or raw input ignore virtual-key
// events; mouse buttons as MOUSEEVENTF_* button events (no movement). All the changes of one
// apply() are one SendInput call, so they enter the input stream together, releases first, with
// no artificial pauses. Every key it holds is released by release_all() and by the destructor.
//
// Limits of SendInput itself: input into a window of a process with higher integrity (a game run
// as administrator) is silently dropped by UIPI unless the engine runs elevated too; while another
// desktop is active (lock screen, UAC prompt) SendInput inserts nothing and apply() throws.
//
// Thread contract: one thread at a time (the play loop); held() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace engine {

class SendInputActuator {
 public:
  // Throws InvalidArgument for an unknown action name.
  explicit SendInputActuator(const std::vector<std::string>& actions);
  ~SendInputActuator();
  SendInputActuator(const SendInputActuator&) = delete;
  SendInputActuator& operator=(const SendInputActuator&) = delete;

  // Bring the held set to `state` (one byte per action, nonzero = held): sends only the differences,
  // releases first, in one SendInput call. Returns the number of events sent. Throws
  // InvalidArgument when n != size(), CaptureError when Windows inserted fewer events than sent
  // (held() then reflects what was inserted).
  int apply(const std::uint8_t* state, std::size_t n);
  void set(std::size_t action, bool down);
  // Release everything held. Returns the number of events sent. Safe to call repeatedly; never
  // throws (it runs on exit paths).
  int release_all();
  std::vector<bool> held() const;
  // What Windows believes is down for each configured action (GetAsyncKeyState of its virtual
  // key): the ground truth tests compare against, as XTestActuator::server_state().
  std::vector<bool> system_state() const;
  // Release every configured action system_state() reports down, whoever pressed it: the crash
  // watchdog's tool (as XTestActuator::release_server_held), since SendInput presses outlive the
  // process that sent them. Returns the number of releases sent; 0 when GetAsyncKeyState cannot
  // see the keys (another desktop active, or UIPI: the foreground window is elevated).
  int release_system_held();
  std::size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine
