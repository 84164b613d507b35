// The Actuator (input/actuator.hpp) of an X display, through XTest: presses and releases the
// configured actions, sending only changes. Every key it holds is released by release_all() and by
// the destructor (the play loop also calls release_all() explicitly). Thread contract: the Actuator's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "input/actuator.hpp"

namespace engine {

class XTestActuator final : public Actuator {
 public:
  XTestActuator(const std::string& display, const std::vector<std::string>& actions);
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

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine
