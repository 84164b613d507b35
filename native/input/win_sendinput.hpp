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
  // MOUSEEVENTF_MOVE with (dx, dy) (relative: Windows applies its pointer speed and "enhance pointer
  // precision" to the cursor; raw-input games see the counts as sent) and MOUSEEVENTF_WHEEL with
  // wheel * WHEEL_DELTA, in one SendInput call. Throws CaptureError when nothing was inserted.
  int move(int dx, int dy, int wheel) override;
  // MOUSEEVENTF_MOVE | ABSOLUTE | VIRTUALDESK to virtual-desktop pixel (x, y).
  void warp(int x, int y) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A virtual Xbox 360 pad through ViGEm (ViGEmBus driver + ViGEmClient.dll, both the user's to install):
// the DLL is loaded at run time, so the engine builds and runs without it and only this class fails,
// with one line naming what is missing. The pad is plugged in by the constructor and unplugged by the
// destructor after a neutral report; a process that dies without either loses its handle to the bus,
// which unplugs the pad (ViGEmBus ties targets to the client's handle), so nothing stays held.
// Compile-tested from Linux (mingw-w64), not run on Windows here.
class ViGEmPad {
 public:
  ViGEmPad();
  ~ViGEmPad();
  ViGEmPad(const ViGEmPad&) = delete;
  ViGEmPad& operator=(const ViGEmPad&) = delete;
  // One XUSB report: buttons as XUSB_GAMEPAD_* bits, triggers 0..255, sticks -32768..32767 (y up, as
  // XInput). Throws CaptureError when the bus refuses it.
  void update(std::uint16_t buttons, std::uint8_t lt, std::uint8_t rt, std::int16_t lx, std::int16_t ly,
              std::int16_t rx, std::int16_t ry);
  // Sticks centred, triggers 0, buttons up. Never throws (exit paths).
  void neutral() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine
