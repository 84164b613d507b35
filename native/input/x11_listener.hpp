// X11 input listener (input/listener.hpp): XInput2 raw key and button events (what the devices did,
// whatever window has the focus; XTest-injected events arrive too), read in a native thread and
// timestamped on the engine's monotonic clock on arrival. No hook, no GIL, nothing that can time out.
// Each event names its source slave (XIRawEvent.sourceid) and whether that slave is an XTest device;
// the XTest slaves are found with XIQueryDevice at construction and again on XI_HierarchyChanged.
// Privacy and the thread contract are the Listener's.
//
// Axes (only those configured; X11 has no gamepad, so only the mouse's):
// - mouse_dx, mouse_dy: XI_RawMotion raw_values of valuators 0 and 1, i.e. what the device reported,
//   before pointer acceleration, screen-edge clipping or any grab or warp (mouse-look games warp the
//   pointer back to the centre: raw motion does not see that). A device whose valuators are absolute
//   (a tablet, a VM's absolute pointer) gives the difference between its consecutive raw positions.
// - wheel: XI_RawButtonPress of buttons 4 (+1, up) and 5 (-1, down): one event per notch (smooth-scroll
//   devices' emulated button presses included; buttons 6/7, horizontal, are not an axis).
// - mouse_x, mouse_y: the pointer's position in [0, 1] across the captured region (0 its first pixel, 1
//   its last; clipped outside it), read with XIQueryPointer in the listener thread once the queued
//   events after a raw motion are handled (one round trip per batch, not per event), and once at
//   start(). Warps make no raw motion, so a value holds until the next move. Only when configured.
// Raw motion is selected only when a motion axis is configured, so an unconfigured mouse costs nothing.
// With one configured, every event (keys too) is stamped from the X server's own time of the event,
// converted to the engine's clock when the server runs on this machine (X.Org's clock is
// CLOCK_MONOTONIC in ms), so stamps do not depend on when the events were read (at most 2 ms after the
// event, never before it). Then, while the mouse moves, the thread does not wake for it: the consumer
// reads the socket itself when it pops events (collect(), from pop()/pop_axes(); it is awake then
// anyway), and the thread reads only when nobody has for 250 ms (its ~4 wake-ups a second read nothing
// while a consumer does). A 1000 Hz mouse costs one socket read per consumer poll (the recorder's ~15-20
// a second), instead of ~100 thread wake-ups (a read every 10 ms) or one per event. An idle mouse
// (nothing for a second) costs nothing: the thread blocks on the socket again. A server on another
// clock gets arrival stamps and the thread reads each event as it comes. Events are read on a
// connection of their own, opened by XCB and then read directly (x11_listener.cpp says why), which asks
// for XInput 2.2: from 2.1 on, raw events reach every client that selected them even while another
// client grabs the pointer, as mouse-look games do.
// Events are never coalesced: the axis log gets each one (listener.hpp).
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "input/listener.hpp"

namespace engine {

class X11InputListener final : public Listener {
 public:
  // axes: any of mouse_dx, mouse_dy, wheel, mouse_x, mouse_y (an InvalidArgument names what a pad axis
  // needs); region: (x, y, w, h) of the captured area on the root window for mouse_x/mouse_y (empty: the
  // screen).
  X11InputListener(const std::string& display, const std::vector<std::string>& actions,
                   const std::vector<std::string>& hotkeys, std::size_t capacity = 65536,
                   const std::vector<std::string>& axes = {}, const std::vector<int>& region = {});
  ~X11InputListener() override;

  void start() override;
  void stop() override;
  // Consumer: with a motion axis, read what the X server has sent now (see the header comment).
  void collect() override;

 private:
  void run();
  int read_batch();  // one read of the event connection, every event in it handled; returns how many
  void send_pointer(int device, std::int32_t source, bool injected, std::int64_t now);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace engine
