// X11 grabber: MIT-SHM XShmGetImage (the X server writes straight into our shared memory), falling
// back to XGetSubImage into a preallocated image when SHM cannot be used, with the reason recorded.
//
// What is read:
// - the screen (root window) for a region or monitor;
// - for a window (by id or title; its inside, or a region of it), the window's OWN pixels: its
//   Composite pixmap (XCompositeRedirectWindow, automatic mode, so the desktop still shows it; the
//   pixmap is named again after a resize), else the window drawable itself. Under a Wayland
//   compositor's XWayland the root holds no pixels (black) while the window's pixmap holds the game,
//   and on X11 a window on top of the game is not read into its frames. The composite path also reads
//   windows that are partly off screen or covered; the drawable and screen paths cannot (grab() throws
//   CaptureError until the window is back on screen). WindowSource::kScreen keeps the old behaviour
//   (the screen at the window's place), for comparison in the bench.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/source.hpp"

namespace engine {

// Where a window's pixels come from (see the header comment).
enum class WindowSource { kAuto, kComposite, kDrawable, kScreen };

struct X11CaptureOptions {
  std::string display;           // "" means $DISPLAY
  std::uint64_t window_id = 0;   // 0: no window by id
  std::string window_title;      // "": no window by title
  bool has_region = false;       // region relative to the window's inside (or the screen)
  std::array<int, 4> region{0, 0, 0, 0};
  bool use_shm = true;           // false forces the XGetImage path
  WindowSource window_source = WindowSource::kAuto;  // kAuto: composite, else the window drawable
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
  int server_pid() const override;
  std::string server_name() const override { return "X server"; }
  std::uint64_t window_id() const;
  // What the pixels are read from: "composite", "window" (the drawable) or "screen".
  std::string read_from() const;
  std::array<int, 2> screen_size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::vector<X11WindowInfo> x11_list_windows(const std::string& display);
std::array<int, 2> x11_screen_size(const std::string& display);

}  // namespace engine
