#include "capture/gdi.hpp"

#include "common/win32.hpp"
#include <dwmapi.h>

#include <algorithm>
#include <atomic>
#include <iterator>

#include "capture/window_match.hpp"
#include "common/error.hpp"

namespace engine {

namespace {

std::string rect_str(int x, int y, int w, int h) {
  return std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(w) + "," + std::to_string(h);
}

std::string to_utf8(const wchar_t* s, int n) {
  if (n <= 0) return {};
  const int len = WideCharToMultiByte(CP_UTF8, 0, s, n, nullptr, 0, nullptr, nullptr);
  std::string out(static_cast<std::size_t>(len > 0 ? len : 0), '\0');
  if (len > 0) WideCharToMultiByte(CP_UTF8, 0, s, n, out.data(), len, nullptr, nullptr);
  return out;
}

std::wstring lower_wide(const std::string& utf8) {
  const int n = MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
  std::wstring w(static_cast<std::size_t>(n > 0 ? n : 0), L'\0');
  if (n > 0) {
    MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), w.data(), n);
    CharLowerBuffW(w.data(), static_cast<DWORD>(n));  // locale-aware, unlike towlower
  }
  return w;
}

HWND as_hwnd(std::uint64_t h) { return reinterpret_cast<HWND>(static_cast<std::uintptr_t>(h)); }
std::uint64_t as_u64(const void* p) { return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p)); }

// Per-monitor DPI awareness for the calling thread while in scope, so window rectangles and the
// screen DC are in physical pixels even when the host process (python.exe) is DPI-unaware and the
// display is scaled. Thread-scoped rather than process-wide (mss sets the process's awareness) so
// the host's own windows are unaffected. SetThreadDpiAwarenessContext is Windows 10 1607+; it is
// looked up at run time so older systems simply run unscaled.
// https://learn.microsoft.com/windows/win32/hidpi/high-dpi-desktop-application-development-on-windows
class DpiAwareScope {
 public:
  DpiAwareScope() {
    if (set_ == nullptr) return;
    old_ = set_(DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE_V2);  // 1703+
    if (old_ == nullptr) old_ = set_(DPI_AWARENESS_CONTEXT_PER_MONITOR_AWARE);
  }
  ~DpiAwareScope() {
    if (old_ != nullptr) set_(old_);
  }
  DpiAwareScope(const DpiAwareScope&) = delete;
  DpiAwareScope& operator=(const DpiAwareScope&) = delete;

 private:
  using SetFn = DPI_AWARENESS_CONTEXT(WINAPI*)(DPI_AWARENESS_CONTEXT);
  static SetFn resolve() {
    const HMODULE user32 = GetModuleHandleW(L"user32.dll");
    const FARPROC p = user32 ? GetProcAddress(user32, "SetThreadDpiAwarenessContext") : nullptr;
    // Through void(*)(): the documented way to silence -Wcast-function-type for GetProcAddress.
    return reinterpret_cast<SetFn>(reinterpret_cast<void (*)()>(p));
  }
  static inline const SetFn set_ = resolve();
  DPI_AWARENESS_CONTEXT old_ = nullptr;
};

BOOL CALLBACK collect_monitor(HMONITOR m, HDC, LPRECT, LPARAM out) {
  reinterpret_cast<std::vector<HMONITOR>*>(out)->push_back(m);
  return TRUE;
}

BOOL CALLBACK collect_window(HWND h, LPARAM out) {
  reinterpret_cast<std::vector<HWND>*>(out)->push_back(h);
  return TRUE;
}

// Windows the user would call "open": visible, titled, top-level and not cloaked (UWP apps keep
// hidden-but-"visible" frames around; DWM reports them cloaked).
bool listable(HWND h) {
  if (!IsWindowVisible(h) || GetWindowTextLengthW(h) == 0) return false;
  DWORD cloaked = 0;
  if (SUCCEEDED(DwmGetWindowAttribute(h, DWMWA_CLOAKED, &cloaked, sizeof cloaked)) && cloaked != 0) return false;
  return true;
}

std::string window_title(HWND h) {
  wchar_t buf[512];
  const int n = GetWindowTextW(h, buf, static_cast<int>(std::size(buf)));
  return to_utf8(buf, n);
}

// Client area in absolute physical pixels; throws WindowLost when the window is gone or not shown.
std::array<int, 4> client_rect(HWND h) {
  if (!IsWindow(h)) throw WindowLost("the captured window was closed");
  if (IsIconic(h)) throw WindowLost("the captured window '" + window_title(h) + "' was minimized");
  if (!IsWindowVisible(h)) throw WindowLost("the captured window '" + window_title(h) + "' was hidden");
  RECT r{};
  POINT origin{0, 0};
  // GetClientRect is relative to the client area itself; ClientToScreen gives its screen origin.
  // https://learn.microsoft.com/windows/win32/api/winuser/nf-winuser-clienttoscreen
  if (!GetClientRect(h, &r) || !ClientToScreen(h, &origin)) throw WindowLost("the captured window was closed");
  return {origin.x, origin.y, r.right - r.left, r.bottom - r.top};
}

const WinMonitorInfo* monitor_holding(const std::vector<WinMonitorInfo>& ms, int x, int y, int w, int h) {
  for (const auto& m : ms) {
    if (x >= m.x && y >= m.y && x + w <= m.x + m.width && y + h <= m.y + m.height) return &m;
  }
  return nullptr;
}

std::string monitors_str(const std::vector<WinMonitorInfo>& ms) {
  std::string out;
  for (const auto& m : ms) {
    out += (out.empty() ? "" : "; ") + std::to_string(m.index) + ": " + rect_str(m.x, m.y, m.width, m.height);
  }
  return out;
}

}  // namespace

std::vector<WinMonitorInfo> win_list_monitors() {
  DpiAwareScope dpi;
  std::vector<HMONITOR> handles;
  EnumDisplayMonitors(nullptr, nullptr, collect_monitor, reinterpret_cast<LPARAM>(&handles));
  std::vector<WinMonitorInfo> out;
  for (HMONITOR m : handles) {
    MONITORINFOEXW mi{};
    mi.cbSize = sizeof mi;
    if (!GetMonitorInfoW(m, &mi)) continue;  // unplugged while we enumerate
    DEVMODEW dm{};
    dm.dmSize = sizeof dm;
    int rotation = 0;
    if (EnumDisplaySettingsExW(mi.szDevice, ENUM_CURRENT_SETTINGS, &dm, 0) && (dm.dmFields & DM_DISPLAYORIENTATION)) {
      rotation = static_cast<int>(dm.dmDisplayOrientation) * 90;  // DMDO_DEFAULT, DMDO_90, ...
    }
    const RECT& r = mi.rcMonitor;
    const int name_len = static_cast<int>(wcsnlen(mi.szDevice, CCHDEVICENAME));
    out.push_back(WinMonitorInfo{0, as_u64(m), to_utf8(mi.szDevice, name_len), r.left, r.top, r.right - r.left,
                                 r.bottom - r.top, (mi.dwFlags & MONITORINFOF_PRIMARY) != 0, rotation});
  }
  std::stable_partition(out.begin(), out.end(), [](const WinMonitorInfo& m) { return m.primary; });
  for (std::size_t i = 0; i < out.size(); ++i) out[i].index = static_cast<int>(i);
  return out;
}

std::vector<WinWindowInfo> win_list_windows() {
  DpiAwareScope dpi;
  std::vector<HWND> handles;
  EnumWindows(collect_window, reinterpret_cast<LPARAM>(&handles));
  std::vector<WinWindowInfo> out;
  for (HWND h : handles) {
    if (!listable(h)) continue;
    RECT r{};
    POINT origin{0, 0};
    if (!GetClientRect(h, &r) || !ClientToScreen(h, &origin)) continue;  // closed meanwhile
    out.push_back(WinWindowInfo{as_u64(h), window_title(h), origin.x, origin.y, r.right - r.left, r.bottom - r.top});
  }
  return out;
}

std::array<int, 2> win_screen_size() {
  for (const auto& m : win_list_monitors()) {
    if (m.primary) return {m.width, m.height};
  }
  throw CaptureError("Windows reports no monitor");
}

namespace win {

std::uint64_t find_window(const std::string& title) {
  return match_window_title(win_list_windows(), title, lower_wide, "window handle").handle;
}

CaptureTarget::CaptureTarget(const WinCaptureOptions& o) {
  DpiAwareScope dpi;
  if (o.window_handle != 0 && !o.window_title.empty()) {
    throw InvalidArgument("give a window handle or a title, not both");
  }
  if (o.window_handle != 0) {
    hwnd_ = o.window_handle;
    if (!IsWindow(as_hwnd(hwnd_))) throw InvalidArgument("no window with handle " + std::to_string(hwnd_));
  }
  if (!o.window_title.empty()) hwnd_ = find_window(o.window_title);
  int bx = 0, by = 0, bw = 0, bh = 0;
  std::vector<WinMonitorInfo> monitors;
  if (hwnd_ != 0) {
    const auto c = client_rect(as_hwnd(hwnd_));
    bx = c[0], by = c[1], bw = c[2], bh = c[3];
  } else {
    monitors = win_list_monitors();
    if (monitors.empty()) throw CaptureError("Windows reports no monitor");
    if (o.output < 0 || o.output >= static_cast<int>(monitors.size())) {
      throw InvalidArgument("no monitor " + std::to_string(o.output) + "; monitors: " + monitors_str(monitors));
    }
    const auto& m = monitors[static_cast<std::size_t>(o.output)];
    bx = m.x, by = m.y, bw = m.width, bh = m.height;
  }
  rel_ = o.has_region ? o.region : std::array<int, 4>{0, 0, bw, bh};
  const auto [rx, ry, rw, rh] = rel_;
  if (rw <= 0 || rh <= 0) throw InvalidArgument("region " + rect_str(rx, ry, rw, rh) + " has no area");
  if (rx < 0 || ry < 0 || rx + rw > bw || ry + rh > bh) {
    throw InvalidArgument("region " + rect_str(rx, ry, rw, rh) + " is outside the " +
                          (hwnd_ ? "window's client area (" : "monitor (") + std::to_string(bw) + "x" +
                          std::to_string(bh) + "); pick X,Y,W,H inside it");
  }
  place(bx, by);
}

void CaptureTarget::place(int base_x, int base_y) {
  const int x = base_x + rel_[0], y = base_y + rel_[1];
  if (monitor_.handle == 0 || !monitor_holding({monitor_}, x, y, rel_[2], rel_[3])) {
    const auto monitors = win_list_monitors();
    const WinMonitorInfo* m = monitor_holding(monitors, x, y, rel_[2], rel_[3]);
    if (m == nullptr) {
      throw InvalidArgument("capture area " + rect_str(x, y, rel_[2], rel_[3]) +
                            " is not inside one monitor (" + monitors_str(monitors) +
                            "); move the window fully onto one screen or pick a region inside it");
    }
    monitor_ = *m;
  }
  base_x_ = base_x, base_y_ = base_y;
}

bool CaptureTarget::follow() {
  if (hwnd_ == 0) return false;
  DpiAwareScope dpi;
  const auto c = client_rect(as_hwnd(hwnd_));
  if (rel_[0] + rel_[2] > c[2] || rel_[1] + rel_[3] > c[3]) {
    throw WindowLost("the captured window shrank to " + std::to_string(c[2]) + "x" + std::to_string(c[3]) +
                     ", smaller than the capture region");
  }
  if (c[0] == base_x_ && c[1] == base_y_) return false;
  place(c[0], c[1]);
  return true;
}

std::array<int, 4> CaptureTarget::rect() const { return {base_x_ + rel_[0], base_y_ + rel_[1], rel_[2], rel_[3]}; }

}  // namespace win

// Expected BitBlt failures (the GDI path's table; the DXGI tables are in dxgi.cpp). Anything else
// throws with the code.
namespace {
struct GdiExpected {
  DWORD code;
  const char* meaning;
};
// While the secure desktop (lock screen, UAC prompt, Ctrl+Alt+Del) is the input desktop, reading
// the screen is refused with ERROR_ACCESS_DENIED; it ends by itself, so keep the last frame.
constexpr GdiExpected kBltExpected[] = {
    {ERROR_ACCESS_DENIED, "another desktop is active (lock screen, UAC prompt)"},
};
bool blt_expected(DWORD code) {
  return std::any_of(std::begin(kBltExpected), std::end(kBltExpected),
                     [&](const GdiExpected& e) { return e.code == code; });
}
}  // namespace

struct GdiGrabber::Impl {
  win::CaptureTarget target;
  std::string reason;
  HDC mem = nullptr;
  HBITMAP dib = nullptr;
  HGDIOBJ old = nullptr;
  std::uint8_t* bits = nullptr;
  std::atomic<std::uint64_t> stale{0};

  Impl(const WinCaptureOptions& o, std::string why) : target(o), reason(std::move(why)) {
    const int w = target.width(), h = target.height();
    mem = CreateCompatibleDC(nullptr);  // a memory DC compatible with the screen
    if (mem == nullptr) throw CaptureError("CreateCompatibleDC failed (error " + std::to_string(GetLastError()) + ")");
    // Negative height: a top-down DIB, so row 0 is the top row, as BgraView expects. 32-bit BI_RGB
    // rows are DWORD-aligned by construction, so the stride is exactly 4 * w.
    // https://learn.microsoft.com/windows/win32/api/wingdi/nf-wingdi-createdibsection
    BITMAPINFO bi{};
    bi.bmiHeader.biSize = sizeof bi.bmiHeader;
    bi.bmiHeader.biWidth = w;
    bi.bmiHeader.biHeight = -h;
    bi.bmiHeader.biPlanes = 1;
    bi.bmiHeader.biBitCount = 32;
    bi.bmiHeader.biCompression = BI_RGB;
    void* p = nullptr;
    dib = CreateDIBSection(mem, &bi, DIB_RGB_COLORS, &p, nullptr, 0);
    if (dib == nullptr || p == nullptr) {
      const DWORD err = GetLastError();
      DeleteDC(mem);
      throw CaptureError("CreateDIBSection of " + std::to_string(w) + "x" + std::to_string(h) + " failed (error " +
                         std::to_string(err) + ")");
    }
    bits = static_cast<std::uint8_t*>(p);
    old = SelectObject(mem, dib);
  }

  ~Impl() {
    if (old != nullptr) SelectObject(mem, old);
    if (dib != nullptr) DeleteObject(dib);
    if (mem != nullptr) DeleteDC(mem);
  }

  BgraView grab() {
    DpiAwareScope dpi;
    target.follow();
    const auto [x, y, w, h] = target.rect();
    // The screen DC is taken and released per grab: ReleaseDC must run on the thread that called
    // GetDC, and the grabber is built on one thread and used on the capture thread.
    // https://learn.microsoft.com/windows/win32/api/winuser/nf-winuser-releasedc
    HDC screen = GetDC(nullptr);
    DWORD err = 0;
    if (screen == nullptr) {
      err = GetLastError();
    } else {
      // CAPTUREBLT includes layered (translucent) windows, as mss does.
      if (!BitBlt(mem, 0, 0, w, h, screen, x, y, SRCCOPY | CAPTUREBLT)) err = GetLastError();
      ReleaseDC(nullptr, screen);
    }
    if (screen == nullptr || err != 0) {
      if (!blt_expected(err)) {
        throw CaptureError("BitBlt of " + rect_str(x, y, w, h) + " from the screen failed (error " +
                           std::to_string(err) + ")");
      }
      stale.fetch_add(1, std::memory_order_relaxed);  // the DIB still holds the last frame
    }
    GdiFlush();  // GDI batches calls: flush before reading the DIB's bits
    return BgraView{bits, w, h, static_cast<std::ptrdiff_t>(w) * 4};
  }
};

GdiGrabber::GdiGrabber(const WinCaptureOptions& options) : GdiGrabber(options, std::string()) {}
GdiGrabber::GdiGrabber(const WinCaptureOptions& options, std::string fallback_reason)
    : impl_(std::make_unique<Impl>(options, std::move(fallback_reason))) {}
GdiGrabber::~GdiGrabber() = default;
BgraView GdiGrabber::grab() { return impl_->grab(); }
int GdiGrabber::width() const { return impl_->target.width(); }
int GdiGrabber::height() const { return impl_->target.height(); }
std::array<int, 4> GdiGrabber::rect() const { return impl_->target.rect(); }
std::string GdiGrabber::backend() const { return "gdi"; }
std::string GdiGrabber::fallback_reason() const { return impl_->reason; }
std::uint64_t GdiGrabber::window_handle() const { return impl_->target.window(); }
std::uint64_t GdiGrabber::stale_grabs() const { return impl_->stale.load(std::memory_order_relaxed); }

}  // namespace engine
