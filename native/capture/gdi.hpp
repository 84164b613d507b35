// Windows GDI screen grabber: BitBlt from the screen DC into a top-down 32-bit DIB section, whose
// bits are the BGRA frame (no copy after the blit). The portable fallback of DxgiGrabber, and the
// only path for some setups (remote sessions, Wine). Captures a monitor, or a window found by
// handle or title (its client area, or a region of it), following the window when it moves.
//
// Also home of what both Windows grabbers share, so their semantics are identical: the capture
// options, the monitor order, and CaptureTarget (where to capture, in physical pixels).
//
// No windows.h here: handles travel as integers (HWND, HMONITOR), so this header can be included
// anywhere (the bindings).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/source.hpp"

namespace engine {

struct WinCaptureOptions {
  int output = 0;                   // monitor index in win_list_monitors() order; unused with a window
  std::uint64_t window_handle = 0;  // HWND as an integer; 0: no window by handle
  std::string window_title;         // UTF-8; "": no window by title
  bool has_region = false;          // region relative to the window's client area (or the monitor)
  std::array<int, 4> region{0, 0, 0, 0};
  bool use_dxgi = true;             // DxgiGrabber only: false forces the GDI path
};

struct WinWindowInfo {
  std::uint64_t handle;  // HWND
  std::string title;     // UTF-8
  int x, y, width, height;  // client area, absolute physical pixels
};

struct WinMonitorInfo {
  int index;             // the `output` option that selects it
  std::uint64_t handle;  // HMONITOR
  std::string name;      // GDI device name, e.g. "\\.\DISPLAY1"
  int x, y, width, height;  // virtual-screen physical pixels
  bool primary;
  int rotation_degrees;  // 0, 90, 180, 270 (clockwise, as Display Settings shows it)
};

// Monitors in the engine's order: the primary first, then EnumDisplayMonitors order.
std::vector<WinMonitorInfo> win_list_monitors();
// Visible, titled, top-level windows in Z order (topmost first).
std::vector<WinWindowInfo> win_list_windows();
// Size of the primary monitor in physical pixels.
std::array<int, 2> win_screen_size();

namespace win {

// Where to capture, from WinCaptureOptions, in absolute physical pixels of the virtual screen. The
// rectangle always lies inside one monitor (so DXGI, which duplicates one output, and GDI agree).
// All methods switch the calling thread to per-monitor DPI awareness for their duration, so
// coordinates are physical pixels even in a DPI-unaware host process.
// Thread contract: one thread at a time.
class CaptureTarget {
 public:
  // Throws InvalidArgument (unknown window, region outside the window or monitor, bad index).
  explicit CaptureTarget(const WinCaptureOptions& options);

  // With a window: re-read its client rectangle (a few cheap user32 calls). Returns true when the
  // capture rectangle moved. Throws WindowLost when the window was closed, minimized or hidden, or
  // shrank below the capture region; InvalidArgument when it moved partly off its monitor.
  bool follow();

  std::array<int, 4> rect() const;  // absolute x, y, w, h
  int width() const { return rel_[2]; }
  int height() const { return rel_[3]; }
  std::uint64_t window() const { return hwnd_; }
  std::uint64_t monitor() const { return monitor_.handle; }  // HMONITOR holding rect()
  const WinMonitorInfo& monitor_info() const { return monitor_; }

 private:
  void place(int base_x, int base_y);

  std::uint64_t hwnd_ = 0;
  std::array<int, 4> rel_{0, 0, 0, 0};  // relative to the client area (or the monitor)
  int base_x_ = 0, base_y_ = 0;         // client-area origin (or monitor origin), absolute
  WinMonitorInfo monitor_{};
};

// Exact title first, then a unique case-insensitive substring; throws InvalidArgument listing the
// candidates otherwise (as x11::find_window).
std::uint64_t find_window(const std::string& title);

}  // namespace win

class GdiGrabber final : public Source {
 public:
  explicit GdiGrabber(const WinCaptureOptions& options);
  // DxgiGrabber's fallback: same options, and the reason DXGI was not used.
  GdiGrabber(const WinCaptureOptions& options, std::string fallback_reason);
  ~GdiGrabber() override;
  GdiGrabber(const GdiGrabber&) = delete;
  GdiGrabber& operator=(const GdiGrabber&) = delete;

  // While another desktop is active (lock screen, UAC prompt) BitBlt is refused: the last frame is
  // returned again (stale_grabs() counts these). Other failures throw CaptureError with the code.
  BgraView grab() override;
  int width() const override;
  int height() const override;
  std::array<int, 4> rect() const override;
  std::string backend() const override;  // "gdi"
  std::string fallback_reason() const override;
  std::uint64_t window_handle() const;
  std::uint64_t stale_grabs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace engine
