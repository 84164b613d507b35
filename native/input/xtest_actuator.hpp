// The Actuator (input/actuator.hpp) of an X display, through XTest: presses and releases the
// configured actions, sending only changes. Every key it holds is released by release_all() and by
// the destructor (the play loop also calls release_all() explicitly). Thread contract: the Actuator's.
//
// By default it sends through the core master's XTest slaves (XTestFakeKeyEvent). With `master` it
// sends through the XTest slaves of that XInput2 master (created if missing, removed by the server
// when this connection closes) with XTestFakeDeviceKeyEvent, so its events carry another source
// device: a second "person" on the same display. That master's keyboard is given the core keyboard's
// focus at construction (each master has its own). system_held() reads the core state only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "input/actuator.hpp"

namespace engine {

class XTestActuator final : public Actuator {
 public:
  XTestActuator(const std::string& display, const std::vector<std::string>& actions, const std::string& master = "");
  ~XTestActuator() override;
  XTestActuator(const XTestActuator&) = delete;
  XTestActuator& operator=(const XTestActuator&) = delete;

  // Releases first, then one flush.
  int apply(const std::uint8_t* state, std::size_t n) override;
  void set(std::size_t action, bool down) override;
  int release_all() override;
  std::vector<bool> held() const override;
  // What the X server believes is down (XQueryKeymap and the pointer mask).
  std::vector<bool> system_held() override;
  int release_system_held() override;
  std::size_t size() const override;
  // XTestFakeRelativeMotionEvent (with a named master: XTestFakeDeviceMotionEvent, relative), wheel as
  // presses and releases of buttons 4 (up) / 5 (down), one pair per notch; then one flush.
  int move(int dx, int dy, int wheel) override;
  // XTestFakeMotionEvent to root (x, y).
  void warp(int x, int y) override;
  // The XInput2 ids of the XTest slaves it sends through (keyboard, pointer): the source devices
  // of its own events in every listener's log. Empty if the server has no XInput2.
  std::vector<int> devices() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine
