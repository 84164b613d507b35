// X11 screen grabber: MIT-SHM XShmGetImage (the X server writes straight into our shared memory),
// falling back to XGetSubImage into a preallocated image when SHM cannot be used, with the reason
// recorded. Captures the root window, or a window found by id or title (its inside, or a region of
// it), and follows the window when it moves. A window moved (partly) off screen cannot be grabbed:
// grab() throws CaptureError saying so until it is back on screen.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/source.hpp"

namespace engine {

struct X11CaptureOptions {
  std::string display;           // "" means $DISPLAY
  std::uint64_t window_id = 0;   // 0: no window by id
  std::string window_title;      // "": no window by title
  bool has_region = false;       // region relative to the window's inside (or the screen)
  std::array<int, 4> region{0, 0, 0, 0};
  bool use_shm = true;           // false forces the XGetImage path
};

struct X11WindowInfo {
  std::uint64_t id;
  std::string title;
  int x, y, width, height;
};

class X11Grabber final : public Source {
 public:
  explicit X11Grabber(const X11CaptureOptions& options);
  ~X11Grabber() override;
  X11Grabber(const X11Grabber&) = delete;
  X11Grabber& operator=(const X11Grabber&) = delete;

  BgraView grab() override;
  int width() const override;
  int height() const override;
  std::array<int, 4> rect() const override;
  std::string backend() const override;
  std::string fallback_reason() const override;
  std::uint64_t window_id() const;
  std::array<int, 2> screen_size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::vector<X11WindowInfo> x11_list_windows(const std::string& display);
std::array<int, 2> x11_screen_size(const std::string& display);

}  // namespace engine
