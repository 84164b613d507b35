#include <pybind11/stl.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "bindings.hpp"
#include "capture/capture_loop.hpp"
#include "common/error.hpp"
#if defined(_WIN32)
#include "capture/dxgi.hpp"
#include "capture/gdi.hpp"
#else
#include "capture/x11_shm.hpp"
#endif

namespace engine::py_bind {

#if !defined(_WIN32)
namespace {
WindowSource parse_window_source(const std::string& s) {
  if (s == "auto") return WindowSource::kAuto;
  if (s == "composite") return WindowSource::kComposite;
  if (s == "window") return WindowSource::kDrawable;
  if (s == "screen") return WindowSource::kScreen;
  throw InvalidArgument("window_source must be auto, composite, window or screen, not '" + s + "'");
}
}  // namespace
#endif

namespace {

// A Source whose grab() calls a Python callable: how a Python backend (mss) runs in the one native
// CaptureLoop, so pacing, drop counting and stats exist only there. The callable returns a uint8 BGRA
// array of shape (height, width, 4) (rows may be padded); the array is kept until the next grab, which
// is the Source contract. Only grab() holds the GIL, and only while the callable runs: the loop
// converts into the sink without it. A Python exception becomes CaptureError (WindowLost when the
// callable raised engine's WindowLost), so the loop reports it through error() like a native failure.
class CallableSource final : public Source {
 public:
  CallableSource(py::object grab, const std::array<int, 4>& rect, std::string backend, std::string fallback_reason,
                 py::handle window_lost_type)
      : grab_(std::move(grab)),
        rect_(rect),
        backend_(std::move(backend)),
        fallback_reason_(std::move(fallback_reason)),
        window_lost_type_(window_lost_type) {
    if (rect_[2] <= 0 || rect_[3] <= 0) throw InvalidArgument("a capture source needs a positive width and height");
  }

  // The last owner may let go without the GIL (a CaptureLoop is destroyed with the GIL released, see
  // below); dropping Python references needs it. After the interpreter is gone, leak them.
  ~CallableSource() override {
    if (!Py_IsInitialized()) {
      held_.release();
      grab_.release();
      return;
    }
    py::gil_scoped_acquire gil;
    held_ = py::object();
    grab_ = py::object();
  }

  // Owner thread only (the capture thread while a loop runs). Takes the GIL.
  BgraView grab() override {
    py::gil_scoped_acquire gil;
    std::string failure;
    bool lost = false;
    try {
      py::object out = grab_();
      if (!py::isinstance<py::array>(out)) {
        throw CaptureError(backend_ + " grab returned " + py::str(py::type::of(out).attr("__name__")).cast<std::string>() +
                           ", not a BGRA numpy array");
      }
      auto pixels = py::reinterpret_borrow<py::array>(out);
      const BgraView v = bgra_view(pixels);
      if (v.width != rect_[2] || v.height != rect_[3]) {
        throw CaptureError(backend_ + " grab returned " + std::to_string(v.width) + "x" + std::to_string(v.height) +
                           " pixels for a " + std::to_string(rect_[2]) + "x" + std::to_string(rect_[3]) + " source");
      }
      held_ = std::move(pixels);
      return v;
    } catch (py::error_already_set& e) {
      // Read the exception here, with the GIL, and let it go before leaving Python's world.
      lost = e.matches(window_lost_type_);
      failure = py::str(e.value()).cast<std::string>();
      if (failure.empty()) failure = py::str(e.type().attr("__name__")).cast<std::string>();
    }
    if (lost) throw WindowLost(failure);
    throw CaptureError(failure);
  }

  int width() const override { return rect_[2]; }
  int height() const override { return rect_[3]; }
  std::array<int, 4> rect() const override { return rect_; }
  std::string backend() const override { return backend_; }
  std::string fallback_reason() const override { return fallback_reason_; }

 private:
  py::object grab_;
  py::object held_;  // the last grab's pixels: what the returned BgraView points into
  const std::array<int, 4> rect_;
  const std::string backend_, fallback_reason_;
  py::handle window_lost_type_;  // engine.errors.WindowLost, held for the module's lifetime
};

}  // namespace

namespace {
// Every OS's capture options carry the optional region (relative to the window, or the screen/monitor)
// the same way.
template <class Options>
void set_region(Options& o, const std::optional<std::array<int, 4>>& region) {
  if (region) {
    o.has_region = true;
    o.region = *region;
  }
}
}  // namespace

#if defined(_WIN32)
namespace {

// Both Windows grabbers take the same options: a monitor by index (win_list_monitors() order, the
// primary first), or a window by HWND or title; the region is relative to the window's client area,
// or to the monitor.
WinCaptureOptions win_options(int output, std::uint64_t window_handle, const std::string& window_title,
                              const std::optional<std::array<int, 4>>& region, bool use_dxgi) {
  WinCaptureOptions o;
  o.output = output;
  o.window_handle = window_handle;
  o.window_title = window_title;
  set_region(o, region);
  o.use_dxgi = use_dxgi;
  return o;
}

}  // namespace
#endif

void bind_capture(py::module_& m) {
  py::class_<Source, std::shared_ptr<Source>>(m, "Source", "A native capture backend.")
      .def_property_readonly("width", &Source::width)
      .def_property_readonly("height", &Source::height)
      .def_property_readonly("rect", &Source::rect, "Absolute screen rectangle (x, y, w, h) of the last grab.")
      .def_property_readonly("backend", &Source::backend)
      .def_property_readonly("fallback_reason", &Source::fallback_reason)
      .def("grab", [](py::object self) {
             auto& s = self.cast<Source&>();
             BgraView v;
             {
               py::gil_scoped_release nogil;
               v = s.grab();
             }
             // Zero-copy view of the backend's buffer (e.g. the MIT-SHM segment): valid until the next
             // grab on this source; base=self keeps the buffer alive.
             py::array view(py::dtype::of<std::uint8_t>(), {v.height, v.width, 4},
                            {static_cast<py::ssize_t>(v.stride), py::ssize_t{4}, py::ssize_t{1}}, v.data, self);
             view.attr("setflags")(py::arg("write") = false);
             return view;
           },
           "Grab BGRA pixels, shape (H, W, 4). The array views the backend's buffer: the next grab overwrites\n"
           "it, so copy what you keep.");

  // engine.errors.WindowLost (pure Python; module.cpp translates the C++ exceptions into those classes),
  // kept alive for the module's lifetime.
  static const py::handle window_lost_type =
      py::object(py::module_::import("engine.errors").attr("WindowLost")).release();
  py::class_<CallableSource, Source, std::shared_ptr<CallableSource>>(
      m, "CallableSource",
      "A Python capture backend as a native Source: grab() calls `grab` with the GIL held. It lets the native\n"
      "CaptureLoop pace, convert, drop and count for Python backends too.")
      .def(py::init([](py::object grab, const std::array<int, 4>& rect, const std::string& backend,
                                       const std::string& fallback_reason) {
             if (!PyCallable_Check(grab.ptr())) throw InvalidArgument("grab must be callable");
             return std::make_shared<CallableSource>(std::move(grab), rect, backend, fallback_reason, window_lost_type);
           }),
           py::arg("grab"), py::arg("rect"), py::arg("backend") = "python", py::arg("fallback_reason") = "",
           "grab: a callable returning uint8 BGRA pixels of shape (rect[3], rect[2], 4), valid until it is called\n"
           "again. rect: the absolute (x, y, w, h) it captures.");

#if defined(_WIN32)
  py::class_<DxgiGrabber, Source, std::shared_ptr<DxgiGrabber>>(
      m, "DxgiGrabber", "DXGI Desktop Duplication; captures through GDI when DXGI refuses (see fallback_reason).")
      .def(py::init([](int output, std::uint64_t window_handle, const std::string& window_title,
                       std::optional<std::array<int, 4>> region, bool use_dxgi) {
             return std::make_shared<DxgiGrabber>(win_options(output, window_handle, window_title, region, use_dxgi));
           }),
           py::arg("output") = 0, py::arg("window_handle") = 0, py::arg("window_title") = "",
           py::arg("region") = py::none(), py::arg("use_dxgi") = true)
      .def_property_readonly("window_handle", &DxgiGrabber::window_handle)
      .def_property_readonly("rotation_degrees", &DxgiGrabber::rotation_degrees)
      .def("stats", [](const DxgiGrabber& g) {
        const DxgiStats s = g.stats();
        return py::dict(py::arg("new_frames") = s.new_frames, py::arg("reused_frames") = s.reused_frames,
                        py::arg("recreated") = s.recreated, py::arg("device_recreated") = s.device_recreated);
      });

  py::class_<GdiGrabber, Source, std::shared_ptr<GdiGrabber>>(m, "GdiGrabber", "GDI BitBlt into a DIB section.")
      .def(py::init([](int output, std::uint64_t window_handle, const std::string& window_title,
                       std::optional<std::array<int, 4>> region) {
             return std::make_shared<GdiGrabber>(win_options(output, window_handle, window_title, region, false));
           }),
           py::arg("output") = 0, py::arg("window_handle") = 0, py::arg("window_title") = "",
           py::arg("region") = py::none())
      .def_property_readonly("window_handle", &GdiGrabber::window_handle)
      .def_property_readonly("stale_grabs", &GdiGrabber::stale_grabs);

  m.def("win_list_windows", [] {
    py::list out;
    for (const auto& w : win_list_windows()) {
      // "id" as x11_list_windows names it: here the HWND.
      out.append(py::dict(py::arg("id") = w.handle, py::arg("title") = w.title,
                          py::arg("rect") = py::make_tuple(w.x, w.y, w.width, w.height)));
    }
    return out;
  }, "Visible, titled, top-level windows, topmost first: id (HWND), title, client rect (physical pixels).");
  m.def("win_list_monitors", [] {
    py::list out;
    for (const auto& mon : win_list_monitors()) {
      out.append(py::dict(py::arg("index") = mon.index, py::arg("handle") = mon.handle, py::arg("name") = mon.name,
                          py::arg("rect") = py::make_tuple(mon.x, mon.y, mon.width, mon.height),
                          py::arg("primary") = mon.primary, py::arg("rotation_degrees") = mon.rotation_degrees));
    }
    return out;
  }, "Monitors in output order (the primary first): index, handle (HMONITOR), name, rect, primary, rotation.");
  m.def("win_screen_size", &win_screen_size, "Size of the primary monitor in physical pixels.");
#else
  py::class_<X11Grabber, Source, std::shared_ptr<X11Grabber>>(m, "X11Grabber")
      .def(py::init([](const std::string& display, std::uint64_t window_id, const std::string& window_title,
                       std::optional<std::array<int, 4>> region, bool use_shm, const std::string& window_source) {
             X11CaptureOptions o;
             o.display = display;
             o.window_id = window_id;
             o.window_title = window_title;
             set_region(o, region);
             o.use_shm = use_shm;
             o.window_source = parse_window_source(window_source);
             return std::make_shared<X11Grabber>(o);
           }),
           py::arg("display") = "", py::arg("window_id") = 0, py::arg("window_title") = "",
           py::arg("region") = py::none(), py::arg("use_shm") = true, py::arg("window_source") = "auto")
      .def_property_readonly("window_id", &X11Grabber::window_id)
      .def_property_readonly("read_from", &X11Grabber::read_from,
                             "What a window's pixels are read from: 'composite', 'window' or 'screen'.")
      .def_property_readonly("screen_size", &X11Grabber::screen_size);

  m.def("x11_list_windows", [](const std::string& display) {
    py::list out;
    for (const auto& w : x11_list_windows(display)) {
      out.append(py::dict(py::arg("id") = w.id, py::arg("title") = w.title,
                          py::arg("rect") = py::make_tuple(w.x, w.y, w.width, w.height)));
    }
    return out;
  }, py::arg("display") = "");
  m.def("x11_screen_size", &x11_screen_size, py::arg("display") = "");
#endif

  // Destroying a CaptureLoop joins its thread, which may be waiting for the GIL in a CallableSource grab:
  // the destructor runs with the GIL released, as stop() does, or the two would wait for each other.
  py::class_<CaptureLoop>(m, "CaptureLoop",
                          "Native capture thread: per pacer tick grab, convert+resize into a sink slot, stamp, publish.",
                          py::release_gil_before_calling_cpp_dtor())
      .def(py::init([](std::shared_ptr<Source> source, std::shared_ptr<FrameSink> sink, int width, int height,
                       const std::string& color, std::int64_t period_ns, const std::string& path, std::int64_t spin_ns) {
             return std::make_unique<CaptureLoop>(std::move(source), std::move(sink), width, height, parse_color(color),
                                                  period_ns, parse_path(path), spin_ns);
           }),
           py::arg("source"), py::arg("sink"), py::arg("width"), py::arg("height"), py::arg("color") = "gray",
           py::arg("period_ns") = 33'333'333, py::arg("path") = "auto", py::arg("spin_ns") = Pacer::kDefaultSpinNs)
      .def("set_realtime", &CaptureLoop::set_realtime, py::arg("priority"), py::arg("cpu") = -1,
           py::arg("grab_realtime") = false,
           "Before start(): SCHED_FIFO at `priority` (0: off) and pinned to `cpu` (< 0: anywhere) for the thread; "
           "grab_realtime: for the grab too, its wait for the X server kicked (play), not only the tick.")
      .def_property_readonly("scheduling", &CaptureLoop::scheduling,
                             "What the thread was granted (\"SCHED_FIFO 20 granted\", \"... refused (...)\", \"off\").")
      .def("start", &CaptureLoop::start)
      .def("stop", &CaptureLoop::stop, py::call_guard<py::gil_scoped_release>())
      .def("pause", &CaptureLoop::pause)
      .def("resume", &CaptureLoop::resume)
      .def_property_readonly("running", &CaptureLoop::running)
      .def_property_readonly("paused", &CaptureLoop::paused)
      .def_property_readonly("error", &CaptureLoop::error)
      .def_property_readonly("window_lost", &CaptureLoop::window_lost)
      .def_property_readonly("period_ns", &CaptureLoop::period_ns)
      .def("stats", [](const CaptureLoop& l) {
        const CaptureStats s = l.stats();
        return py::dict(py::arg("ticks") = s.ticks, py::arg("frames") = s.frames, py::arg("late_ticks") = s.late_ticks,
                        py::arg("dropped") = s.dropped, py::arg("grab_ns_total") = s.grab_ns_total,
                        py::arg("grab_ns_max") = s.grab_ns_max, py::arg("convert_ns_total") = s.convert_ns_total,
                        py::arg("convert_ns_max") = s.convert_ns_max, py::arg("lateness_ns_total") = s.lateness_ns_total,
                        py::arg("lateness_ns_max") = s.lateness_ns_max);
      })
      .def("lateness_log", [](const CaptureLoop& l) {
        const auto v = l.lateness_log();
        py::array_t<std::int64_t> out(static_cast<py::ssize_t>(v.size()));
        std::copy(v.begin(), v.end(), out.mutable_data());
        return out;
      }, "Lateness (ns) of the most recent ticks, oldest first.");
}

}  // namespace engine::py_bind
