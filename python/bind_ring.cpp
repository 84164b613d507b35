#include <pybind11/stl.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "bindings.hpp"
#include "common/error.hpp"
#include "ring/frame_queue.hpp"
#include "ring/latest_ring.hpp"
#include "ring/window_feed.hpp"

namespace engine::py_bind {

namespace {

using Shape = std::vector<py::ssize_t>;

std::size_t shape_bytes(const Shape& s) {
  if (s.empty()) throw InvalidArgument("frame shape must not be empty");
  std::size_t n = 1;
  for (auto d : s) {
    if (d <= 0) throw InvalidArgument("frame shape entries must be positive");
    n *= static_cast<std::size_t>(d);
  }
  return n;
}

// The native rings know bytes, not shapes; the bindings remember the frame shape for NumPy views.
struct ShapedQueue : FrameQueue {
  ShapedQueue(std::size_t capacity, Shape s) : FrameQueue(capacity, shape_bytes(s)), shape(std::move(s)) {}
  Shape shape;
};
struct ShapedRing : LatestRing {
  ShapedRing(std::size_t window, Shape s, std::size_t slack) : LatestRing(window, shape_bytes(s), slack), shape(std::move(s)) {}
  Shape shape;
};

std::int64_t timeout_ns(double seconds) { return seconds < 0 ? -1 : static_cast<std::int64_t>(seconds * 1e9); }

// A C-contiguous writable uint8 array with `leading` frames of `shape`.
std::uint8_t* frames_buffer(py::array& a, const Shape& shape, std::size_t frames, const char* what) {
  if (a.dtype().kind() != 'u' || a.itemsize() != 1 || !a.writeable() ||
      !(a.flags() & py::array::c_style) || a.ndim() != static_cast<py::ssize_t>(shape.size()) + 1 ||
      static_cast<std::size_t>(a.shape(0)) < frames) {
    throw InvalidArgument(std::string(what) + " must be a writable C-contiguous uint8 array of frames");
  }
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (a.shape(static_cast<py::ssize_t>(i) + 1) != shape[i]) throw InvalidArgument(std::string(what) + " has the wrong frame shape");
  }
  return static_cast<std::uint8_t*>(a.mutable_data());
}

template <typename T>
T* vector_buffer(py::array& a, std::size_t n, char kind, const char* what) {
  if (a.dtype().kind() != kind || a.itemsize() != sizeof(T) || !a.writeable() || a.ndim() != 1 ||
      static_cast<std::size_t>(a.shape(0)) < n || a.strides(0) != static_cast<py::ssize_t>(sizeof(T))) {
    throw InvalidArgument(std::string(what) + " has the wrong dtype or size");
  }
  return static_cast<T*>(a.mutable_data());
}

}  // namespace

void bind_ring(py::module_& m) {
  py::class_<FrameSink, std::shared_ptr<FrameSink>>(m, "FrameSink")
      .def_property_readonly("frame_bytes", &FrameSink::frame_bytes);

  py::class_<ShapedQueue, FrameSink, std::shared_ptr<ShapedQueue>>(
      m, "FrameQueue",
      "SPSC queue of frames for recording. A native producer fills it; one Python consumer drains it.\n"
      "When full, the producer drops the newest frame and counts it.")
      .def(py::init<std::size_t, Shape>(), py::arg("capacity"), py::arg("frame_shape"))
      .def_property_readonly("capacity", &ShapedQueue::capacity)
      .def_property_readonly("frame_shape", [](const ShapedQueue& q) { return py::tuple(py::cast(q.shape)); })
      .def_property_readonly("dropped", &ShapedQueue::dropped)
      .def("available", &ShapedQueue::available, "Consumer only: frames ready to read.")
      .def("wait", [](ShapedQueue& q, double timeout) {
             py::gil_scoped_release nogil;
             return q.wait(timeout_ns(timeout));
           }, py::arg("timeout") = -1.0, "Consumer only: block (without the GIL) until a frame is ready.")
      .def("frame", [](py::object self, std::size_t i) {
             auto& q = self.cast<ShapedQueue&>();
             if (i >= q.available()) throw py::index_error("no ready frame at that index");
             py::array view(py::dtype::of<std::uint8_t>(), q.shape, {}, q.frame_at(i), self);
             view.attr("setflags")(py::arg("write") = false);
             return view;
           }, py::arg("i") = 0,
           "Consumer only: zero-copy read-only view of the i-th ready frame, valid until pop().")
      .def("t_ns", [](const ShapedQueue& q, std::size_t i) { return q.t_ns_at(i); }, py::arg("i") = 0)
      .def("tick", [](const ShapedQueue& q, std::size_t i) { return q.tick_at(i); }, py::arg("i") = 0)
      .def("pop", &ShapedQueue::pop, py::arg("n") = 1, "Consumer only: release n frames.")
      .def("pop_into", [](ShapedQueue& q, py::array frames, py::array t_ns, py::array ticks) {
             const std::size_t max = static_cast<std::size_t>(frames.ndim() > 0 ? frames.shape(0) : 0);
             std::uint8_t* f = frames_buffer(frames, q.shape, max, "frames");
             auto* t = vector_buffer<std::int64_t>(t_ns, max, 'i', "t_ns");
             auto* k = vector_buffer<std::uint64_t>(ticks, max, 'u', "ticks");
             py::gil_scoped_release nogil;
             return q.pop_into(f, t, k, max);
           }, py::arg("frames"), py::arg("t_ns"), py::arg("ticks"),
           "Consumer only: copy up to len(frames) ready frames (e.g. into a memmap) and release them.");

  py::class_<ShapedRing, FrameSink, std::shared_ptr<ShapedRing>>(
      m, "LatestRing",
      "The newest `window` frames as one contiguous array (mirrored storage), for play. Readers never\n"
      "block the producer; a copy that raced with an overwrite is reported and retried.")
      .def(py::init<std::size_t, Shape, std::size_t>(), py::arg("window"), py::arg("frame_shape"), py::arg("slack") = 4)
      .def_property_readonly("window", &ShapedRing::window)
      .def_property_readonly("slack", &ShapedRing::slack)
      .def_property_readonly("frame_shape", [](const ShapedRing& r) { return py::tuple(py::cast(r.shape)); })
      .def_property_readonly("published", &ShapedRing::published)
      .def("wait_newer", [](ShapedRing& r, std::uint64_t after, double timeout) {
             py::gil_scoped_release nogil;
             return r.wait_newer(after, timeout_ns(timeout));
           }, py::arg("after"), py::arg("timeout") = -1.0,
           "Block (without the GIL) until more than `after` frames are published; returns the count.")
      .def("copy_window", [](ShapedRing& r, std::uint64_t end, py::array out) -> py::object {
             if (end + 1 < r.window() || end >= r.published()) throw py::index_error("no complete window ends at that frame");
             std::uint8_t* dst = frames_buffer(out, r.shape, r.window(), "out");
             std::int64_t t = 0;
             std::uint64_t tick = 0;
             bool ok;
             {
               py::gil_scoped_release nogil;
               ok = r.copy_window(end, dst, &t, &tick);
             }
             if (!ok) return py::none();
             return py::make_tuple(t, tick);
           }, py::arg("end"), py::arg("out"),
           "Copy the window ending at frame `end` into out. Returns (t_ns, tick) of that newest frame, or\n"
           "None if the producer overwrote the window meanwhile (then out holds nothing usable).")
      .def("t_ns", [](const ShapedRing& r, std::uint64_t frame) { return r.t_ns(frame); })
      .def("tick", [](const ShapedRing& r, std::uint64_t frame) { return r.tick(frame); })
      .def("t_grabbed", [](const ShapedRing& r, std::uint64_t frame) { return r.t_grabbed(frame); },
           py::arg("frame"), "When the grab of `frame` returned (monotonic ns; 0 if pushed without a grab).")
      .def("t_published", [](const ShapedRing& r, std::uint64_t frame) { return r.t_published(frame); },
           py::arg("frame"), "When `frame` was published (monotonic ns; valid while it is in the ring).")
      .def_property_readonly("woken_ns", &ShapedRing::woken_ns,
                             "When the last wait_newer() saw a new frame, before it took the GIL back (ns).")
      .def("lock", &ShapedRing::lock,
           "mlock the frame storage (no page faults on the latency path); False if RLIMIT_MEMLOCK refuses.")
      .def_property_readonly("locked", &ShapedRing::locked);

  // Checks a feed's arguments (with the GIL) and returns the typed call to run without it.
  struct Feed {
    InputLayout layout;
    std::size_t channels;
    char kind;
    const void* table;
    void* dst;
    bool run(const ShapedRing& ring, std::uint64_t end, std::size_t window, std::size_t skip, std::int64_t* t,
             std::uint64_t* tick) const {
      if (kind == 'f') return feed_window(ring, end, window, skip, static_cast<const float*>(table), layout, channels,
                                          static_cast<float*>(dst), t, tick);
      if (kind == 'u') return feed_window(ring, end, window, skip, static_cast<const std::uint8_t*>(table), layout,
                                          channels, static_cast<std::uint8_t*>(dst), t, tick);
      return feed_window(ring, end, window, skip, static_cast<const std::int8_t*>(table), layout, channels,
                         static_cast<std::int8_t*>(dst), t, tick);
    }
  };
  auto check_feed = [](ShapedRing& ring, std::size_t window, std::size_t skip, py::array& lut, const std::string& layout,
                       py::array& out) {
    if (window < 1 || skip < 1) throw InvalidArgument("window and skip must be >= 1");
    if ((window - 1) * skip + 1 > ring.window()) {
      throw InvalidArgument("the ring holds " + std::to_string(ring.window()) + " frames; a window of " +
                            std::to_string(window) + " with skip " + std::to_string(skip) + " needs " +
                            std::to_string((window - 1) * skip + 1));
    }
    Feed f{};
    if (layout == "frames") f.layout = InputLayout::kFrames;
    else if (layout == "channels") f.layout = InputLayout::kChannels;
    else throw InvalidArgument("layout must be 'frames' or 'channels'");
    f.channels = ring.shape.size() == 3 ? static_cast<std::size_t>(ring.shape[2]) : 1;
    if (lut.ndim() != 1 || lut.shape(0) != 256 || !(lut.flags() & py::array::c_style)) throw InvalidArgument("lut must be 256 contiguous entries");
    if (lut.dtype().not_equal(out.dtype())) throw InvalidArgument("lut and out must have the same dtype");
    if (!out.writeable() || !(out.flags() & py::array::c_style) ||
        static_cast<std::size_t>(out.size()) != window * ring.frame_bytes()) {
      throw InvalidArgument("out must be a writable C-contiguous buffer of window * frame elements");
    }
    f.kind = out.dtype().kind();
    const auto itemsize = out.itemsize();
    if (!((f.kind == 'f' && itemsize == 4) || (f.kind == 'u' && itemsize == 1) || (f.kind == 'i' && itemsize == 1))) {
      throw InvalidArgument("model input dtype must be float32, uint8 or int8");
    }
    f.table = lut.data();
    f.dst = out.mutable_data();
    return f;
  };

  m.def("feed_window", [check_feed](ShapedRing& ring, std::uint64_t end, std::size_t window, std::size_t skip,
                                    py::array lut, const std::string& layout, py::array out) -> py::object {
          const Feed f = check_feed(ring, window, skip, lut, layout, out);
          if (end + 1 < ring.window() || end >= ring.published()) throw py::index_error("no complete window ends at that frame");
          std::int64_t t = 0;
          std::uint64_t tick = 0;
          bool ok = false;
          {
            py::gil_scoped_release nogil;
            ok = f.run(ring, end, window, skip, &t, &tick);
          }
          if (!ok) return py::none();
          return py::make_tuple(t, tick);
        }, py::arg("ring"), py::arg("end"), py::arg("window"), py::arg("skip"), py::arg("lut"), py::arg("layout"),
        py::arg("out"),
        "Write the window ending at `end` (every `skip`-th frame) into a model input buffer through a 256-entry\n"
        "LUT, layout 'frames' (W,H,W',C) or 'channels' (H,W',W*C). Returns (t_ns, tick) of the newest frame, or\n"
        "None if the producer overwrote the window meanwhile.");

  // The play loop's wake-up (issue #19): wait for a frame newer than `after` and feed the newest window in the
  // same call without the GIL, so the loop comes back to Python with its input ready, the invoke next.
  m.def("wait_feed", [check_feed](ShapedRing& ring, std::uint64_t after, double timeout, std::size_t window,
                                  std::size_t skip, py::array lut, const std::string& layout, py::array out) {
          const Feed f = check_feed(ring, window, skip, lut, layout, out);
          std::int64_t t = 0, t_grab = 0, t_pub = 0, t_woken = 0, t_fed = 0;
          std::uint64_t tick = 0, n = 0;
          bool ok = false;
          {
            py::gil_scoped_release nogil;
            n = ring.wait_newer(std::max<std::uint64_t>(after, ring.window() - 1), timeout_ns(timeout));
            if (n > after && n >= ring.window()) {  // the newest complete window ends at n - 1
              t_woken = ring.woken_ns();
              ok = f.run(ring, n - 1, window, skip, &t, &tick);
              t_grab = ring.t_grabbed(n - 1);
              t_pub = ring.t_published(n - 1);
              t_fed = monotonic_ns();
            }
          }
          return py::make_tuple(n, ok, t, tick, t_grab, t_pub, t_woken, t_fed);
        }, py::arg("ring"), py::arg("after"), py::arg("timeout"), py::arg("window"), py::arg("skip"), py::arg("lut"),
        py::arg("layout"), py::arg("out"),
        "Wait (without the GIL, up to `timeout` s) until more than `after` frames are published, then feed the\n"
        "newest window like feed_window. Returns (published, fed, t_ns, tick, t_grabbed, t_published, t_woken,\n"
        "t_fed): fed"
        "is False on a timeout or a torn window (then retry).");

  m.def("push_frame", [](FrameSink& sink, const py::array& frame, std::int64_t t_ns, std::uint64_t tick) {
          if (frame.dtype().kind() != 'u' || frame.itemsize() != 1 || !(frame.flags() & py::array::c_style) ||
              static_cast<std::size_t>(frame.size()) != sink.frame_bytes()) {
            throw InvalidArgument("frame must be a C-contiguous uint8 array of the sink's frame size");
          }
          const auto* src = static_cast<const std::uint8_t*>(frame.data());
          py::gil_scoped_release nogil;
          std::uint8_t* slot = sink.acquire();
          if (slot == nullptr) {
            sink.drop();
            return false;
          }
          std::memcpy(slot, src, sink.frame_bytes());
          sink.publish(t_ns, tick);
          return true;
        }, py::arg("sink"), py::arg("frame"), py::arg("t_ns"), py::arg("tick"),
        "Producer side for already-converted frames (replaying a session): copy into the next slot and publish.\n"
        "Returns False when the sink was full (dropped and counted).");
}

}  // namespace engine::py_bind
