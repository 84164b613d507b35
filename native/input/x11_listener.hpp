// X11 input listener (input/listener.hpp): XInput2 raw key and button events (what the devices did,
// whatever window has the focus; XTest-injected events arrive too), read in a native thread and
// timestamped on the engine's monotonic clock on arrival. No hook, no GIL, nothing that can time out.
// Each event names its source slave (XIRawEvent.sourceid) and whether that slave is an XTest device;
// the XTest slaves are found with XIQueryDevice at construction and again on XI_HierarchyChanged.
// Privacy and the thread contract are the Listener's.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "input/listener.hpp"

namespace engine {

class X11InputListener final : public Listener {
 public:
  X11InputListener(const std::string& display, const std::vector<std::string>& actions,
                   const std::vector<std::string>& hotkeys, std::size_t capacity = 65536);
  ~X11InputListener() override;

  void start() override;
  void stop() override;

 private:
  void run();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace engine
