// The interface every capture backend implements (X11 MIT-SHM/XGetImage, DXGI, GDI): one grab
// returns BGRA pixels that stay valid until the next grab on the same object.
#pragma once

#include <array>
#include <string>

#include "kernels/convert_resize.hpp"

namespace engine {

class Source {
 public:
  virtual ~Source() = default;
  // Owner thread only (the capture thread while a loop runs). Throws CaptureError, WindowLost.
  virtual BgraView grab() = 0;
  virtual int width() const = 0;
  virtual int height() const = 0;
  // Absolute screen rectangle of the last grab: x, y, w, h.
  virtual std::array<int, 4> rect() const = 0;
  // The path actually taken, e.g. "xshm" or "xgetimage".
  virtual std::string backend() const = 0;
  // Why a faster path was not taken; empty when it was.
  virtual std::string fallback_reason() const { return {}; }
  // The local process that produces the pixels on request (the X server: each grab waits for it to run),
  // and what to call it; -1 when there is none or it is unknown (a remote display, DXGI).
  virtual int server_pid() const { return -1; }
  virtual std::string server_name() const { return "display server"; }
};

}  // namespace engine
