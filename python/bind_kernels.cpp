#include <pybind11/stl.h>

#include <optional>
#include <vector>

#include "bindings.hpp"
#include "common/error.hpp"

namespace engine::py_bind {

Color parse_color(const std::string& s) {
  if (s == "gray") return Color::Gray;
  if (s == "rgb") return Color::Rgb;
  throw InvalidArgument("color must be 'gray' or 'rgb', not '" + s + "'");
}

KernelPath parse_path(const std::string& s) {
  for (KernelPath p : {KernelPath::Auto, KernelPath::Scalar, KernelPath::Sse2, KernelPath::Avx2}) {
    if (s == kernel_path_name(p)) return p;
  }
  throw InvalidArgument("kernel path must be one of auto, scalar, sse2, avx2; not '" + s + "'");
}

BgraView bgra_view(const py::array& a) {
  if (a.dtype().kind() != 'u' || a.itemsize() != 1 || a.ndim() != 3 || a.shape(2) != 4) {
    throw InvalidArgument("expected a uint8 BGRA image of shape (H, W, 4)");
  }
  if (a.strides(2) != 1 || a.strides(1) != 4 || a.strides(0) < a.shape(1) * 4) {
    throw InvalidArgument("BGRA pixels must be contiguous within rows (row padding is fine)");
  }
  return BgraView{static_cast<const std::uint8_t*>(a.data()), static_cast<int>(a.shape(1)),
                  static_cast<int>(a.shape(0)), a.strides(0)};
}

PixelsOut pixels_out(py::array& a, Color c) {
  const int ch = channels(c);
  const bool shape_ok = c == Color::Gray ? a.ndim() == 2 : (a.ndim() == 3 && a.shape(2) == 3);
  if (a.dtype().kind() != 'u' || a.itemsize() != 1 || !shape_ok || !a.writeable()) {
    throw InvalidArgument(c == Color::Gray ? "output must be a writable uint8 array of shape (H, W)"
                                           : "output must be a writable uint8 array of shape (H, W, 3)");
  }
  if ((c == Color::Rgb && (a.strides(2) != 1 || a.strides(1) != 3)) || (c == Color::Gray && a.strides(1) != 1) ||
      a.strides(0) < a.shape(1) * ch) {
    throw InvalidArgument("output pixels must be contiguous within rows (row padding is fine)");
  }
  return PixelsOut{static_cast<std::uint8_t*>(a.mutable_data()), static_cast<int>(a.shape(1)),
                   static_cast<int>(a.shape(0)), a.strides(0)};
}

namespace {

py::array new_output(int w, int h, Color c) {
  if (c == Color::Gray) return py::array_t<std::uint8_t>({h, w});
  return py::array_t<std::uint8_t>({h, w, 3});
}

py::array run_prepared(ConvertResize& plan, const py::array& src, std::optional<py::array> out) {
  const BgraView in = bgra_view(src);
  py::array dst = out ? *out : new_output(plan.dst_width(), plan.dst_height(), plan.color());
  const PixelsOut o = pixels_out(dst, plan.color());
  {
    py::gil_scoped_release nogil;
    plan.run(in, o);
  }
  return dst;
}

}  // namespace

void bind_kernels(py::module_& m) {
  m.def("kernel_paths", [] {
    std::vector<std::string> out;
    for (KernelPath p : {KernelPath::Scalar, KernelPath::Sse2, KernelPath::Avx2}) {
      if (kernel_path_available(p)) out.emplace_back(kernel_path_name(p));
    }
    return out;
  }, "Kernel paths this CPU can run, slowest first.");
  m.def("best_kernel_path", [] { return std::string(kernel_path_name(best_kernel_path())); });

  py::class_<ConvertResize>(m, "ConvertResize",
                            "Prepared fused BGRA -> gray|rgb conversion and area resize for fixed sizes.")
      .def(py::init([](int src_w, int src_h, int dst_w, int dst_h, const std::string& color, const std::string& path) {
             return new ConvertResize(src_w, src_h, dst_w, dst_h, parse_color(color), parse_path(path));
           }),
           py::arg("src_w"), py::arg("src_h"), py::arg("dst_w"), py::arg("dst_h"), py::arg("color") = "gray",
           py::arg("path") = "auto")
      .def("run", &run_prepared, py::arg("src"), py::arg("out") = py::none(),
           "Convert src (H, W, 4) BGRA into out (or a new array); returns the output.")
      .def_property_readonly("path", [](const ConvertResize& c) { return std::string(kernel_path_name(c.path())); })
      .def_property_readonly("color", [](const ConvertResize& c) { return c.color() == Color::Gray ? "gray" : "rgb"; })
      .def_property_readonly("frame_bytes", &ConvertResize::frame_bytes);

  m.def(
      "convert_resize",
      [](const py::array& src, int width, int height, const std::string& color, const std::string& path,
         std::optional<py::array> out) {
        const BgraView in = bgra_view(src);
        ConvertResize plan(in.width, in.height, width, height, parse_color(color), parse_path(path));
        return run_prepared(plan, src, std::move(out));
      },
      py::arg("src"), py::arg("width"), py::arg("height"), py::arg("color") = "gray", py::arg("path") = "auto",
      py::arg("out") = py::none(), "One-shot fused convert + area resize of a BGRA image.");
}

}  // namespace engine::py_bind
