// engine._native_testing: test-only producers, built only with -DENGINE_TEST_HOOKS=ON (the editable
// install of scripts/setup.sh), never into a plain wheel. Tests import it and skip without it.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>

#include "ring/frame_sink.hpp"
#include "tests/stress_producer.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_native_testing, m) {
  m.doc() = "engine test hooks (not shipped): native producers for the ring tests";
  // FrameSink, FrameQueue and LatestRing are registered by engine._native; pybind11 shares registered
  // types between modules, so the sinks it makes are accepted here once it is loaded.
  py::module_::import("engine._native");
  py::class_<engine::StressProducer>(m, "StressProducer",
                                     "Native test producer: frames whose bytes derive from their sequence number.")
      .def(py::init<std::shared_ptr<engine::FrameSink>, std::uint64_t, std::int64_t>(), py::arg("sink"),
           py::arg("frames"), py::arg("period_ns") = 0, py::keep_alive<1, 2>())
      .def("start", &engine::StressProducer::start)
      .def("join", &engine::StressProducer::join, py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("done", &engine::StressProducer::done)
      .def_property_readonly("published", &engine::StressProducer::published)
      .def_property_readonly("dropped", &engine::StressProducer::dropped);
}
