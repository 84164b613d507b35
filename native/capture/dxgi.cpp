#include "capture/dxgi.hpp"

#include "common/win32.hpp"
#include <d3d11.h>
#include <dxgi1_2.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <optional>
#include <utility>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace engine {

namespace {

constexpr std::uint32_t u32(HRESULT hr) { return static_cast<std::uint32_t>(hr); }

// Microsoft's DesktopDuplication sample (CommonTypes.h / DuplicationManager.cpp) lists the codes
// each call returns during a system transition: CreateDuplicationExpectedErrors,
// FrameInfoExpectedErrors, SystemTransitionsExpectedErrors, EnumOutputsExpectedErrors. DXcam's
// core/dxgi_errors.py keeps the same buckets and adds SESSION_DISCONNECTED to the frame calls.
// The sample's WAIT_ABANDONED is left out: it is a success code, so no failure can carry it.
// https://github.com/microsoft/Windows-classic-samples/tree/main/Samples/DXGIDesktopDuplication
constexpr const char* kDeviceRemoved = "the GPU was removed or its driver restarted (driver update, TDR)";
constexpr const char* kAccessLost =
    "the desktop changed: a display mode switch, a full-screen exclusive game starting or leaving, or a desktop "
    "switch (lock screen, UAC prompt)";

const std::vector<DxgiExpectedError> kCreate = {
    {u32(DXGI_ERROR_DEVICE_REMOVED), DxgiAction::RecreateDevice, "DXGI_ERROR_DEVICE_REMOVED", kDeviceRemoved},
    {u32(E_ACCESSDENIED), DxgiAction::Recreate, "E_ACCESSDENIED",
     "another desktop is active: the lock screen, a UAC prompt or Ctrl+Alt+Del"},
    {u32(DXGI_ERROR_UNSUPPORTED), DxgiAction::Recreate, "DXGI_ERROR_UNSUPPORTED",
     "this desktop cannot be duplicated (while switching modes; when it persists: a hybrid-GPU laptop whose "
     "display is wired to the other GPU, or the Microsoft Basic Display Driver)"},
    {u32(DXGI_ERROR_SESSION_DISCONNECTED), DxgiAction::Recreate, "DXGI_ERROR_SESSION_DISCONNECTED",
     "the Remote Desktop session is disconnected"},
    {u32(DXGI_ERROR_NOT_FOUND), DxgiAction::Recreate, "DXGI_ERROR_NOT_FOUND",
     "the output went away during a display change"},
    {u32(DXGI_ERROR_ACCESS_LOST), DxgiAction::Recreate, "DXGI_ERROR_ACCESS_LOST", kAccessLost},
    {u32(DXGI_ERROR_NOT_CURRENTLY_AVAILABLE), DxgiAction::Throw, "DXGI_ERROR_NOT_CURRENTLY_AVAILABLE",
     "too many applications already duplicate this output (screen recorders, streaming or remote-control tools); "
     "close one"},
};
const std::vector<DxgiExpectedError> kAcquire = {
    {u32(DXGI_ERROR_WAIT_TIMEOUT), DxgiAction::NoNewFrame, "DXGI_ERROR_WAIT_TIMEOUT",
     "no new desktop image since the last grab"},
    {u32(DXGI_ERROR_ACCESS_LOST), DxgiAction::Recreate, "DXGI_ERROR_ACCESS_LOST", kAccessLost},
    {u32(DXGI_ERROR_SESSION_DISCONNECTED), DxgiAction::Recreate, "DXGI_ERROR_SESSION_DISCONNECTED",
     "the Remote Desktop session is disconnected"},
    {u32(DXGI_ERROR_DEVICE_REMOVED), DxgiAction::RecreateDevice, "DXGI_ERROR_DEVICE_REMOVED", kDeviceRemoved},
    {u32(DXGI_ERROR_DEVICE_RESET), DxgiAction::RecreateDevice, "DXGI_ERROR_DEVICE_RESET", kDeviceRemoved},
    {u32(DXGI_ERROR_INVALID_CALL), DxgiAction::Throw, "DXGI_ERROR_INVALID_CALL",
     "a frame was acquired while the previous one was still held (an engine bug: please report it)"},
};
const std::vector<DxgiExpectedError> kMap = {
    {u32(DXGI_ERROR_DEVICE_REMOVED), DxgiAction::RecreateDevice, "DXGI_ERROR_DEVICE_REMOVED", kDeviceRemoved},
    {u32(DXGI_ERROR_DEVICE_RESET), DxgiAction::RecreateDevice, "DXGI_ERROR_DEVICE_RESET", kDeviceRemoved},
    {u32(DXGI_ERROR_ACCESS_LOST), DxgiAction::Recreate, "DXGI_ERROR_ACCESS_LOST", kAccessLost},
    {u32(E_OUTOFMEMORY), DxgiAction::Throw, "E_OUTOFMEMORY",
     "out of memory for the staging texture; capture a smaller region"},
};

// Names for codes that are not in the tables but show up in messages.
struct NamedCode {
  std::uint32_t hresult;
  const char* name;
};
constexpr NamedCode kOtherNames[] = {
    {0x80004001u, "E_NOTIMPL"},      {0x80004002u, "E_NOINTERFACE"},
    {0x80004005u, "E_FAIL"},         {0x80070057u, "E_INVALIDARG"},
    {0x887A0001u, "DXGI_ERROR_INVALID_CALL"}, {0x887A0006u, "DXGI_ERROR_DEVICE_HUNG"},
    {0x887A0020u, "DXGI_ERROR_DRIVER_INTERNAL_ERROR"},
};

template <class T>
class Com {
 public:
  Com() = default;
  ~Com() { reset(); }
  Com(const Com&) = delete;
  Com& operator=(const Com&) = delete;
  Com(Com&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Com& operator=(Com&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  T** put() {
    reset();
    return &p_;
  }
  void reset() {
    if (p_ != nullptr) {
      p_->Release();
      p_ = nullptr;
    }
  }
  template <class U>
  HRESULT as(Com<U>& out) const {
    return p_->QueryInterface(__uuidof(U), reinterpret_cast<void**>(out.put()));
  }

 private:
  T* p_ = nullptr;
};

std::string to_utf8(const wchar_t* s) {
  const int n = static_cast<int>(wcslen(s));
  if (n == 0) return {};
  const int len = WideCharToMultiByte(CP_UTF8, 0, s, n, nullptr, 0, nullptr, nullptr);
  std::string out(static_cast<std::size_t>(len > 0 ? len : 0), '\0');
  if (len > 0) WideCharToMultiByte(CP_UTF8, 0, s, n, out.data(), len, nullptr, nullptr);
  return out;
}

int degrees(DXGI_MODE_ROTATION r) {
  switch (r) {
    case DXGI_MODE_ROTATION_ROTATE90:
      return 90;
    case DXGI_MODE_ROTATION_ROTATE180:
      return 180;
    case DXGI_MODE_ROTATION_ROTATE270:
      return 270;
    default:
      return 0;  // IDENTITY, UNSPECIFIED
  }
}

std::string rect_str(int x, int y, int w, int h) {
  return std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(w) + "," + std::to_string(h);
}

// Why a setup step failed: the call and its HRESULT.
struct Failure {
  std::string call;
  HRESULT hr;
};

}  // namespace

const std::vector<DxgiExpectedError>& dxgi_expected_errors(DxgiContext context) {
  switch (context) {
    case DxgiContext::Create:
      return kCreate;
    case DxgiContext::Acquire:
      return kAcquire;
    case DxgiContext::Map:
      break;
  }
  return kMap;
}

const DxgiExpectedError* dxgi_find_expected(DxgiContext context, std::uint32_t hresult) {
  for (const auto& e : dxgi_expected_errors(context)) {
    if (e.hresult == hresult) return &e;
  }
  return nullptr;
}

std::string hresult_str(std::uint32_t hresult) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08X", static_cast<unsigned>(hresult));
  const char* name = nullptr;
  for (DxgiContext c : {DxgiContext::Create, DxgiContext::Acquire, DxgiContext::Map}) {
    if (const DxgiExpectedError* e = dxgi_find_expected(c, hresult)) name = e->name;
  }
  for (const auto& n : kOtherNames) {
    if (n.hresult == hresult) name = n.name;
  }
  return name ? std::string(hex) + " (" + name + ")" : std::string(hex);
}

namespace dxgi {

std::array<int, 4> texture_rect(const std::array<int, 4>& r, int rotation, int desk_w, int desk_h) {
  const auto [x, y, w, h] = r;
  switch (rotation) {
    case 90:  // desktop (X, Y) is texture (Y, desk_w - 1 - X)
      return {y, desk_w - x - w, h, w};
    case 180:  // texture (desk_w - 1 - X, desk_h - 1 - Y)
      return {desk_w - x - w, desk_h - y - h, w, h};
    case 270:  // texture (desk_h - 1 - Y, X)
      return {desk_h - y - h, x, h, w};
    default:
      return r;
  }
}

void rotate_to_desktop(const BgraView& tex, int rotation, std::uint8_t* out, std::ptrdiff_t out_stride) {
  const bool swap = rotation == 90 || rotation == 270;
  const int w = swap ? tex.height : tex.width, h = swap ? tex.width : tex.height;
  auto px = [&](int tx, int ty) { return tex.data + static_cast<std::ptrdiff_t>(ty) * tex.stride + 4 * tx; };
  for (int y = 0; y < h; ++y) {
    std::uint8_t* row = out + static_cast<std::ptrdiff_t>(y) * out_stride;
    for (int x = 0; x < w; ++x) {
      const std::uint8_t* p = nullptr;
      switch (rotation) {
        case 90:
          p = px(y, w - 1 - x);
          break;
        case 180:
          p = px(w - 1 - x, h - 1 - y);
          break;
        case 270:
          p = px(h - 1 - y, x);
          break;
        default:
          p = px(x, y);
          break;
      }
      std::memcpy(row + 4 * x, p, 4);
    }
  }
}

}  // namespace dxgi

std::vector<DxgiOutputInfo> dxgi_list_outputs() {
  Com<IDXGIFactory1> factory;
  HRESULT hr = CreateDXGIFactory1(__uuidof(IDXGIFactory1), reinterpret_cast<void**>(factory.put()));
  if (FAILED(hr)) throw CaptureError("CreateDXGIFactory1 failed: " + hresult_str(u32(hr)));
  std::vector<DxgiOutputInfo> out;
  Com<IDXGIAdapter1> adapter;
  for (UINT a = 0; factory->EnumAdapters1(a, adapter.put()) != DXGI_ERROR_NOT_FOUND; ++a) {
    if (!adapter) continue;
    DXGI_ADAPTER_DESC1 ad{};
    adapter->GetDesc1(&ad);
    Com<IDXGIOutput> output;
    for (UINT o = 0; adapter->EnumOutputs(o, output.put()) != DXGI_ERROR_NOT_FOUND; ++o) {
      if (!output) continue;
      DXGI_OUTPUT_DESC d{};
      if (FAILED(output->GetDesc(&d))) continue;
      const RECT& r = d.DesktopCoordinates;
      out.push_back(DxgiOutputInfo{static_cast<int>(a), static_cast<int>(o), to_utf8(ad.Description),
                                   to_utf8(d.DeviceName),
                                   static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(d.Monitor)), r.left,
                                   r.top, r.right - r.left, r.bottom - r.top, degrees(d.Rotation),
                                   d.AttachedToDesktop != FALSE});
    }
  }
  return out;
}

struct DxgiGrabber::Impl {
  win::CaptureTarget target;
  WinCaptureOptions options;
  std::unique_ptr<GdiGrabber> gdi;  // set when DXGI was refused at construction
  std::string reason;

  Com<IDXGIFactory1> factory;
  Com<ID3D11Device> device;
  Com<ID3D11DeviceContext> ctx;
  Com<IDXGIOutputDuplication> dup;
  std::uint64_t dup_monitor = 0;  // HMONITOR the duplicator shows
  RECT desk{};                    // its desktop coordinates
  int rotation = 0;               // degrees
  bool frame_held = false;
  bool fresh = false;  // no frame copied from this duplicator yet

  // Two staging textures, used in turn: the new region is copied and mapped into one while the
  // other still holds (mapped) the last frame, so a failure half-way never loses the last frame.
  std::array<Com<ID3D11Texture2D>, 2> staging;
  std::array<bool, 2> mapped{false, false};
  std::array<D3D11_MAPPED_SUBRESOURCE, 2> maps{};
  int cur = -1;  // staging texture holding `last` (when it is not `rotated` or `hold`)
  std::vector<std::uint8_t> rotated;  // desktop-oriented copy for rotated outputs
  std::vector<std::uint8_t> hold;     // the last frame, kept while the device is recreated
  BgraView last{nullptr, 0, 0, 0};

  std::int64_t retry_at = 0, retry_delay = 0;
  std::atomic<std::uint64_t> new_frames{0}, reused{0}, recreated{0}, device_recreated{0};

  explicit Impl(const WinCaptureOptions& o) : target(o), options(o) {
    if (!o.use_dxgi) {
      fall_back("DXGI disabled by the caller");
      return;
    }
    std::optional<Failure> f;
    try {
      f = open();
    } catch (const CaptureError& e) {  // DXGI and GDI disagree about the monitor
      drop_device(false);
      fall_back(std::string("DXGI Desktop Duplication is unusable: ") + e.what());
      return;
    }
    if (f) {
      const DxgiExpectedError* e = dxgi_find_expected(DxgiContext::Create, u32(f->hr));
      drop_device(false);
      fall_back("DXGI Desktop Duplication is unavailable: " + f->call + " failed with " + hresult_str(u32(f->hr)) +
                (e ? std::string(": ") + e->meaning : std::string()));
      return;
    }
    // The first AcquireNextFrame after DuplicateOutput returns the current desktop; give it 2 s so
    // that grab() always has a frame to return again.
    for (int attempt = 0; attempt < 4 && last.data == nullptr; ++attempt) {
      const Step s = acquire_copy(500);
      if (s.hr == DXGI_ERROR_WAIT_TIMEOUT) continue;
      if (FAILED(s.hr)) {
        drop_device(false);
        fall_back(std::string("DXGI Desktop Duplication is unavailable: the first frame failed: ") + s.call +
                  " returned " + hresult_str(u32(s.hr)));
        return;
      }
    }
    if (last.data == nullptr) {
      drop_device(false);
      fall_back("DXGI Desktop Duplication delivered no first frame in 2 s");
    }
  }

  ~Impl() { drop_device(false); }

  void fall_back(std::string why) {
    reason = std::move(why) + "; capturing with GDI";
    gdi = std::make_unique<GdiGrabber>(options, reason);
  }

  // Texture-space size of the region (the desktop region with 90/270 swapped).
  std::array<int, 2> texture_size() const {
    const bool swap = rotation == 90 || rotation == 270;
    if (swap) return {target.height(), target.width()};
    return {target.width(), target.height()};
  }

  // Factory, output for the target's monitor, device on that output's adapter, duplicator,
  // staging textures. Returns the failing step, or nothing on success.
  std::optional<Failure> open() {
    HRESULT hr = S_OK;
    if (factory && !factory->IsCurrent()) factory.reset();  // adapters changed: enumerate anew
    if (!factory) {
      hr = CreateDXGIFactory1(__uuidof(IDXGIFactory1), reinterpret_cast<void**>(factory.put()));
      if (FAILED(hr)) return Failure{"CreateDXGIFactory1", hr};
    }
    // DXGI outputs are matched to the monitor by HMONITOR, so output indices mean the same monitor
    // as on the GDI path.
    const auto monitor = reinterpret_cast<HMONITOR>(static_cast<std::uintptr_t>(target.monitor()));
    Com<IDXGIAdapter1> adapter;
    Com<IDXGIOutput> output;
    DXGI_OUTPUT_DESC od{};
    bool found = false;
    for (UINT a = 0; !found && factory->EnumAdapters1(a, adapter.put()) != DXGI_ERROR_NOT_FOUND; ++a) {
      for (UINT o = 0; adapter && adapter->EnumOutputs(o, output.put()) != DXGI_ERROR_NOT_FOUND; ++o) {
        if (output && SUCCEEDED(output->GetDesc(&od)) && od.Monitor == monitor) {
          found = true;
          break;
        }
      }
    }
    if (!found) {
      return Failure{"EnumOutputs (no DXGI output shows monitor " + target.monitor_info().name + ")",
                     DXGI_ERROR_NOT_FOUND};
    }
    // DuplicateOutput needs a device on the output's own adapter.
    if (device && !on_adapter(adapter.get())) drop_d3d(true);
    if (!device) {
      // The device must live on the output's adapter, so the driver type is UNKNOWN.
      // https://learn.microsoft.com/windows/win32/api/d3d11/nf-d3d11-d3d11createdevice
      const D3D_FEATURE_LEVEL levels[] = {D3D_FEATURE_LEVEL_11_0, D3D_FEATURE_LEVEL_10_1, D3D_FEATURE_LEVEL_10_0,
                                          D3D_FEATURE_LEVEL_9_1};
      D3D_FEATURE_LEVEL got{};
      hr = D3D11CreateDevice(adapter.get(), D3D_DRIVER_TYPE_UNKNOWN, nullptr, 0, levels,
                             static_cast<UINT>(std::size(levels)), D3D11_SDK_VERSION, device.put(), &got, ctx.put());
      if (FAILED(hr)) return Failure{"D3D11CreateDevice", hr};
    }
    Com<IDXGIOutput1> output1;
    hr = output.as(output1);
    if (FAILED(hr)) return Failure{"QueryInterface(IDXGIOutput1) (Windows 8 or later is needed)", hr};
    // https://learn.microsoft.com/windows/win32/api/dxgi1_2/nf-dxgi1_2-idxgioutput1-duplicateoutput
    hr = output1->DuplicateOutput(device.get(), dup.put());
    if (FAILED(hr)) return Failure{"IDXGIOutput1::DuplicateOutput", hr};
    fresh = true;
    DXGI_OUTDUPL_DESC dd{};
    dup->GetDesc(&dd);
    const int new_rotation = degrees(dd.Rotation);
    // A mode switch (e.g. a full-screen game at another resolution) can change the output.
    const auto [x, y, w, h] = target.rect();
    const RECT& r = od.DesktopCoordinates;
    if (x < r.left || y < r.top || x + w > r.right || y + h > r.bottom) {
      throw CaptureError("monitor " + target.monitor_info().name + " changed to " +
                         rect_str(r.left, r.top, r.right - r.left, r.bottom - r.top) + "; the capture area " +
                         rect_str(x, y, w, h) + " no longer fits on it");
    }
    desk = r;
    dup_monitor = target.monitor();
    if (new_rotation != rotation || !staging[0]) {
      keep_last();
      release_staging();
      rotation = new_rotation;
    }
    if (!staging[0]) {
      const auto [tw, th] = texture_size();
      D3D11_TEXTURE2D_DESC td{};
      td.Width = static_cast<UINT>(tw);
      td.Height = static_cast<UINT>(th);
      td.MipLevels = 1;
      td.ArraySize = 1;
      td.Format = DXGI_FORMAT_B8G8R8A8_UNORM;  // IDXGIOutput1 duplication is always BGRA8
      td.SampleDesc.Count = 1;
      td.Usage = D3D11_USAGE_STAGING;
      td.CPUAccessFlags = D3D11_CPU_ACCESS_READ;
      for (auto& s : staging) {
        hr = device->CreateTexture2D(&td, nullptr, s.put());
        if (FAILED(hr)) return Failure{"CreateTexture2D (staging)", hr};
      }
      if (rotation != 0) rotated.assign(static_cast<std::size_t>(target.width()) * target.height() * 4, 0);
    }
    return std::nullopt;
  }

  // Copy the last frame into memory we own before the staging textures (or the rotation buffer)
  // it points into go away.
  void keep_last() {
    if (last.data == nullptr || last.data == hold.data()) return;
    const std::size_t row = static_cast<std::size_t>(last.width) * 4;
    hold.resize(row * static_cast<std::size_t>(last.height));
    for (int y = 0; y < last.height; ++y) std::memcpy(hold.data() + row * y, last.data + last.stride * y, row);
    last = BgraView{hold.data(), last.width, last.height, static_cast<std::ptrdiff_t>(row)};
  }

  void release_staging() {
    for (int i = 0; i < 2; ++i) {
      if (mapped[i]) ctx->Unmap(staging[i].get(), 0);
      mapped[i] = false;
      staging[i].reset();
    }
    cur = -1;
  }

  void drop_duplication() {
    if (dup && frame_held) dup->ReleaseFrame();
    frame_held = false;
    dup.reset();
  }

  // Everything on the device. keep: first copy the last frame out of the staging textures (not
  // needed when the object is going away or falling back).
  void drop_d3d(bool keep) {
    if (keep) keep_last();
    drop_duplication();
    if (ctx) release_staging();
    ctx.reset();
    device.reset();
  }

  // The device and the factory, whose adapter list may be stale after a device loss.
  void drop_device(bool keep) {
    drop_d3d(keep);
    factory.reset();
  }

  bool on_adapter(IDXGIAdapter1* adapter) const {
    Com<IDXGIDevice> dxgi_device;
    Com<IDXGIAdapter> mine;
    DXGI_ADAPTER_DESC a{}, b{};
    if (FAILED(device.as(dxgi_device)) || FAILED(dxgi_device->GetAdapter(mine.put())) || FAILED(mine->GetDesc(&a)) ||
        FAILED(adapter->GetDesc(&b))) {
      return false;
    }
    return a.AdapterLuid.LowPart == b.AdapterLuid.LowPart && a.AdapterLuid.HighPart == b.AdapterLuid.HighPart;
  }

  // MS sample's ProcessFailure: when the device is gone, whatever the call said, it is a removal.
  HRESULT effective(HRESULT hr) const {
    if (device && device->GetDeviceRemovedReason() != S_OK) return DXGI_ERROR_DEVICE_REMOVED;
    return hr;
  }

  // Apply the table of `context` to a failure; throws when the code is not expected there.
  void recover(DxgiContext context, const char* call, HRESULT hr) {
    hr = effective(hr);
    const DxgiExpectedError* e = dxgi_find_expected(context, u32(hr));
    if (e == nullptr || e->action == DxgiAction::Throw) {
      throw CaptureError(std::string("DXGI capture failed: ") + call + " returned " + hresult_str(u32(hr)) +
                         (e ? std::string(": ") + e->meaning : std::string()));
    }
    if (e->action == DxgiAction::RecreateDevice) {
      drop_device(true);
      device_recreated.fetch_add(1, std::memory_order_relaxed);
    } else if (e->action == DxgiAction::Recreate) {
      drop_duplication();
    }
  }

  // Try to get the duplicator back; at most once per back-off step (0, 10, 20, ... 500 ms) so a
  // long transition (a UAC prompt) costs nothing per tick.
  bool reopen() {
    const std::int64_t now = monotonic_ns();
    if (now < retry_at) return false;
    std::optional<Failure> f;
    try {
      f = open();
    } catch (...) {
      drop_device(true);
      throw;
    }
    if (!f) {
      retry_delay = 0;
      recreated.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    drop_duplication();
    recover(DxgiContext::Create, f->call.c_str(), f->hr);
    retry_delay = std::clamp<std::int64_t>(retry_delay * 2, 10'000'000, 500'000'000);
    retry_at = now + retry_delay;
    return false;
  }

  // Outcome of one acquire + copy + map: S_OK with a new frame in `last`, DXGI_ERROR_WAIT_TIMEOUT
  // when the desktop image did not change, or the failing call with its context (the frame is
  // released by then).
  struct Step {
    HRESULT hr;
    DxgiContext context;
    const char* call;
  };

  Step acquire_copy(UINT timeout_ms) {
    DXGI_OUTDUPL_FRAME_INFO info{};
    Com<IDXGIResource> resource;
    // https://learn.microsoft.com/windows/win32/api/dxgi1_2/nf-dxgi1_2-idxgioutputduplication-acquirenextframe
    HRESULT hr = dup->AcquireNextFrame(timeout_ms, &info, resource.put());
    if (FAILED(hr)) return {hr, DxgiContext::Acquire, "IDXGIOutputDuplication::AcquireNextFrame"};
    frame_held = true;
    // Only the pointer moved: the desktop image is unchanged. (A new duplicator's first frame is
    // always copied: the last frame may predate the transition.)
    if (info.LastPresentTime.QuadPart == 0 && !fresh) {
      hr = release_frame();
      if (FAILED(hr)) return {hr, DxgiContext::Acquire, "IDXGIOutputDuplication::ReleaseFrame"};
      return {DXGI_ERROR_WAIT_TIMEOUT, DxgiContext::Acquire, ""};
    }
    Com<ID3D11Texture2D> tex;
    hr = resource.as(tex);
    if (FAILED(hr)) {
      release_frame();
      return {hr, DxgiContext::Acquire, "QueryInterface(ID3D11Texture2D)"};
    }
    D3D11_TEXTURE2D_DESC td{};
    tex->GetDesc(&td);
    const auto [x, y, w, h] = target.rect();
    const int dw = desk.right - desk.left, dh = desk.bottom - desk.top;
    const auto [tx, ty, tw, th] = dxgi::texture_rect({x - desk.left, y - desk.top, w, h}, rotation, dw, dh);
    if (tx < 0 || ty < 0 || tx + tw > static_cast<int>(td.Width) || ty + th > static_cast<int>(td.Height)) {
      release_frame();
      throw CaptureError("the duplicated desktop is " + std::to_string(td.Width) + "x" + std::to_string(td.Height) +
                         ", which does not hold the capture area " + rect_str(x, y, w, h));
    }
    const int next = cur == 0 ? 1 : 0;
    if (mapped[next]) {
      ctx->Unmap(staging[next].get(), 0);
      mapped[next] = false;
    }
    const D3D11_BOX box{static_cast<UINT>(tx), static_cast<UINT>(ty), 0, static_cast<UINT>(tx + tw),
                        static_cast<UINT>(ty + th), 1};
    ctx->CopySubresourceRegion(staging[next].get(), 0, 0, 0, 0, tex.get(), 0, &box);
    // Release early, as DXcam does: the copy is already queued, and a held frame delays the next.
    hr = release_frame();
    if (FAILED(hr)) return {hr, DxgiContext::Acquire, "IDXGIOutputDuplication::ReleaseFrame"};
    // Map waits for the copy to finish.
    hr = ctx->Map(staging[next].get(), 0, D3D11_MAP_READ, 0, &maps[next]);
    if (FAILED(hr)) return {hr, DxgiContext::Map, "ID3D11DeviceContext::Map"};
    mapped[next] = true;
    cur = next;
    fresh = false;
    const BgraView v{static_cast<const std::uint8_t*>(maps[cur].pData), tw, th,
                     static_cast<std::ptrdiff_t>(maps[cur].RowPitch)};
    if (rotation != 0) {
      dxgi::rotate_to_desktop(v, rotation, rotated.data(), static_cast<std::ptrdiff_t>(w) * 4);
      last = BgraView{rotated.data(), w, h, static_cast<std::ptrdiff_t>(w) * 4};
    } else {
      last = v;
    }
    new_frames.fetch_add(1, std::memory_order_relaxed);
    return {S_OK, DxgiContext::Acquire, ""};
  }

  HRESULT release_frame() {
    frame_held = false;
    return dup->ReleaseFrame();
  }

  BgraView stale() {
    reused.fetch_add(1, std::memory_order_relaxed);
    return last;
  }

  BgraView grab() {
    if (gdi) return gdi->grab();
    if (target.follow() && target.monitor() != dup_monitor) {
      // The window went to another monitor: duplicate that one (possibly on another adapter).
      drop_device(true);
      retry_at = 0;
    }
    if (!dup && !reopen()) return stale();
    // Timeout 0: the pacer decides when to grab; waiting here would only add latency.
    const Step s = acquire_copy(0);
    if (s.hr == S_OK) return last;
    const DxgiExpectedError* e = dxgi_find_expected(s.context, u32(s.hr));
    if (e != nullptr && e->action == DxgiAction::NoNewFrame) return stale();
    recover(s.context, s.call, s.hr);
    retry_at = 0;  // first retry right away: ACCESS_LOST usually recovers at once
    return stale();
  }
};

DxgiGrabber::DxgiGrabber(const WinCaptureOptions& options) : impl_(std::make_unique<Impl>(options)) {}
DxgiGrabber::~DxgiGrabber() = default;
BgraView DxgiGrabber::grab() { return impl_->grab(); }
int DxgiGrabber::width() const { return impl_->target.width(); }
int DxgiGrabber::height() const { return impl_->target.height(); }
std::array<int, 4> DxgiGrabber::rect() const { return impl_->gdi ? impl_->gdi->rect() : impl_->target.rect(); }
std::string DxgiGrabber::backend() const { return impl_->gdi ? "gdi" : "dxgi"; }
std::string DxgiGrabber::fallback_reason() const { return impl_->reason; }
std::uint64_t DxgiGrabber::window_handle() const { return impl_->target.window(); }
int DxgiGrabber::rotation_degrees() const { return impl_->gdi ? 0 : impl_->rotation; }
DxgiStats DxgiGrabber::stats() const {
  DxgiStats s;
  s.new_frames = impl_->new_frames.load(std::memory_order_relaxed);
  s.reused_frames = impl_->reused.load(std::memory_order_relaxed);
  s.recreated = impl_->recreated.load(std::memory_order_relaxed);
  s.device_recreated = impl_->device_recreated.load(std::memory_order_relaxed);
  return s;
}

}  // namespace engine
