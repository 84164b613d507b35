// Glue shared by the pybind11 binding files: argument conversion only; all work happens in native/.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "kernels/convert_resize.hpp"

namespace engine::py_bind {

namespace py = pybind11;

void bind_kernels(py::module_& m);
void bind_ring(py::module_& m);
void bind_capture(py::module_& m);
void bind_input(py::module_& m);

Color parse_color(const std::string& s);
KernelPath parse_path(const std::string& s);

// A BGRA image from a uint8 array of shape (H, W, 4) whose pixels are contiguous (rows may be padded).
BgraView bgra_view(const py::array& a);
// A writable uint8 output of shape (H, W) for gray or (H, W, 3) for RGB, rows may be padded.
PixelsOut pixels_out(py::array& a, Color c);

}  // namespace engine::py_bind
