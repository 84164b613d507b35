// Windows DXGI Desktop Duplication grabber (the fast path on Windows 8+; DXcam's core/, after
// Microsoft's DesktopDuplication sample). The desktop image of one output stays on the GPU; each
// grab copies only the requested region into a CPU-readable staging texture
// (CopySubresourceRegion) and maps it: the BGRA rows are read in place, no extra CPU copy.
//
// Contract (STYLE.md "Backends"):
// - A timeout (no new desktop image since the last grab) returns the last frame again, never an
//   empty result. So do the transitions below while the duplicator is being recreated.
// - Expected errors live in one table per context (create / acquire / map, dxgi_expected_errors()):
//   ACCESS_LOST and the other transition codes recreate the duplicator (or the device); anything
//   else throws CaptureError with the HRESULT in hex.
// - When DXGI refuses at construction (DXGI_ERROR_UNSUPPORTED on hybrid-GPU laptops, no DXGI
//   output for the monitor, Remote Desktop, Wine's E_NOTIMPL, ...) the object captures through
//   GDI instead: backend() says "gdi" and fallback_reason() says why.
// - Outputs rotated in Display Settings are captured upright: the desktop texture is in the
//   panel's native orientation and the region is rotated on the CPU (one extra copy).
// - Regions and windows mean the same as for GdiGrabber (win::CaptureTarget); a window that moves
//   to another monitor makes the grabber duplicate that monitor instead.
//
// Thread contract: as Source (one owner thread at a time); stats() from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/gdi.hpp"
#include "capture/source.hpp"

namespace engine {

// Where an HRESULT came from: creating the duplication (DuplicateOutput, EnumOutputs while
// recovering), acquiring a frame (AcquireNextFrame, ReleaseFrame), or reading it (Map of the
// staging texture).
enum class DxgiContext : std::uint8_t { Create, Acquire, Map };
enum class DxgiAction : std::uint8_t {
  NoNewFrame,      // reuse the last frame
  Recreate,        // drop the duplicator, reuse the last frame, create it again (retried, backing off)
  RecreateDevice,  // the same, with a new D3D11 device (and DXGI factory)
  Throw,           // expected but fatal: CaptureError with the table's explanation
};
struct DxgiExpectedError {
  std::uint32_t hresult;
  DxgiAction action;
  const char* name;     // e.g. "DXGI_ERROR_ACCESS_LOST"
  const char* meaning;  // what the user is doing when it happens
};
// The table of one context. Codes not in it throw.
const std::vector<DxgiExpectedError>& dxgi_expected_errors(DxgiContext context);
// nullptr when `hresult` is not expected in `context`.
const DxgiExpectedError* dxgi_find_expected(DxgiContext context, std::uint32_t hresult);
// "0x887A0026 (DXGI_ERROR_ACCESS_LOST)", or just the hex for codes we have no name for.
std::string hresult_str(std::uint32_t hresult);

struct DxgiOutputInfo {
  int adapter;               // IDXGIFactory1::EnumAdapters1 index
  int output;                // IDXGIAdapter1::EnumOutputs index
  std::string adapter_name;  // UTF-8 description, e.g. "NVIDIA GeForce RTX 3060"
  std::string device_name;   // "\\.\DISPLAY1", as WinMonitorInfo::name
  std::uint64_t monitor;     // HMONITOR, as WinMonitorInfo::handle
  int x, y, width, height;   // desktop coordinates
  int rotation_degrees;      // 0, 90, 180, 270
  bool attached;             // part of the desktop
};
// Every DXGI output of every adapter. Throws CaptureError when DXGI itself is unavailable.
std::vector<DxgiOutputInfo> dxgi_list_outputs();

struct DxgiStats {
  std::uint64_t new_frames = 0;        // grabs that copied a new desktop image
  std::uint64_t reused_frames = 0;     // grabs that returned the last frame (no new image, or recovering)
  std::uint64_t recreated = 0;         // duplicators recreated after a transition
  std::uint64_t device_recreated = 0;  // of which with a new device
};

class DxgiGrabber final : public Source {
 public:
  // Throws InvalidArgument for bad options (as GdiGrabber); falls back to GDI when DXGI refuses.
  explicit DxgiGrabber(const WinCaptureOptions& options);
  ~DxgiGrabber() override;
  DxgiGrabber(const DxgiGrabber&) = delete;
  DxgiGrabber& operator=(const DxgiGrabber&) = delete;

  BgraView grab() override;
  int width() const override;
  int height() const override;
  std::array<int, 4> rect() const override;
  std::string backend() const override;  // "dxgi", or "gdi" after a fallback
  std::string fallback_reason() const override;
  std::uint64_t window_handle() const;
  int rotation_degrees() const;  // of the duplicated output (0 on the GDI path)
  DxgiStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Rotation arithmetic, separate so it can be tested without a rotated monitor. `rotation` is in
// degrees clockwise (DXGI_MODE_ROTATION_ROTATE90 = 90). The duplicated texture is the desktop
// rotated back by `rotation`, in the panel's native orientation (Microsoft's DesktopDuplication
// sample, DISPLAYMANAGER::SetDirtyVert).
namespace dxgi {
// The texture rectangle holding the desktop rectangle r (x, y, w, h relative to the output's
// origin) of an output whose desktop is desk_w x desk_h.
std::array<int, 4> texture_rect(const std::array<int, 4>& r, int rotation, int desk_w, int desk_h);
// Write the desktop-oriented pixels of a texture region `tex` (as located by texture_rect) to
// `out`, which is tex.height x tex.width for 90/270 and tex.width x tex.height otherwise.
void rotate_to_desktop(const BgraView& tex, int rotation, std::uint8_t* out, std::ptrdiff_t out_stride);
}  // namespace dxgi

}  // namespace engine
