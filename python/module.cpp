// engine._native: the private extension over native/. engine/ wraps it in the typed public API.
#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "common/clock.hpp"
#include "common/error.hpp"

#ifndef ENGINE_VERSION
#define ENGINE_VERSION "0+unknown"
#endif

namespace py = pybind11;

PYBIND11_MODULE(_native, m) {
  m.doc() = "engine native core (private; use the engine package)";
  m.attr("__version__") = ENGINE_VERSION;
  // engine::InvalidArgument derives from std::invalid_argument, which pybind11 maps to ValueError.
  // CaptureError and WindowLost are the pure-Python classes of engine/errors.py (so that module loads
  // no compiled code): the C++ exceptions are translated into them. The references are kept for the
  // life of the process on purpose (a translator may run until the interpreter ends).
  const py::module_ errors = py::module_::import("engine.errors");
  static const py::handle capture_error = py::object(errors.attr("CaptureError")).release();
  static const py::handle window_lost = py::object(errors.attr("WindowLost")).release();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const engine::WindowLost& e) {
      py::set_error(window_lost, e.what());
    } catch (const engine::CaptureError& e) {
      py::set_error(capture_error, e.what());
    }
  });
  m.def("monotonic_ns", &engine::monotonic_ns, "The engine's clock: monotonic nanoseconds (int64).");
  engine::py_bind::bind_kernels(m);
  engine::py_bind::bind_ring(m);
  engine::py_bind::bind_capture(m);
  engine::py_bind::bind_input(m);
}
