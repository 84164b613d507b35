// The Actuator (input/actuator.hpp) of Windows, through SendInput, sending only changes.
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
// Thread contract: the Actuator's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "input/actuator.hpp"

namespace engine {

class SendInputActuator final : public Actuator {
 public:
  // Throws InvalidArgument for an unknown action name.
  explicit SendInputActuator(const std::vector<std::string>& actions);
  ~SendInputActuator() override;
  SendInputActuator(const SendInputActuator&) = delete;
  SendInputActuator& operator=(const SendInputActuator&) = delete;

  // Releases first, in one SendInput call. Throws CaptureError when Windows inserted fewer events
  // than sent (held() then reflects what was inserted).
  int apply(const std::uint8_t* state, std::size_t n) override;
  void set(std::size_t action, bool down) override;
  // Never throws (it runs on exit paths).
  int release_all() override;
  std::vector<bool> held() const override;
  // What Windows believes is down (GetAsyncKeyState of each action's virtual key).
  std::vector<bool> system_held() override;
  // 0 when GetAsyncKeyState cannot see the keys (another desktop active, or UIPI: the foreground
  // window is elevated).
  int release_system_held() override;
  std::size_t size() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine
