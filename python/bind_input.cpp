#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "bindings.hpp"
#include "common/error.hpp"
#include "input/action_table.hpp"
#include "input/actuator.hpp"
#include "input/axis_framer.hpp"
#include "input/listener.hpp"
#if defined(_WIN32)
#include "input/win_rawinput.hpp"
#include "input/win_sendinput.hpp"
#else
#include "input/x11_listener.hpp"
#include "input/xtest_actuator.hpp"
#endif

namespace engine::py_bind {

namespace {

// The shared interfaces are bound once, as Python base classes: every platform's actuator and listener
// exposes the same methods with the same GIL handling.
void bind_actuator(py::module_& m) {
  py::class_<Actuator>(m, "Actuator",
                       "Presses and releases the configured actions, sending only changes (XTest or SendInput).")
      .def("apply", [](Actuator& a, const py::array& state) {
             const py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast> s(state);
             const std::uint8_t* p = s.data();
             const auto n = static_cast<std::size_t>(s.size());
             py::gil_scoped_release nogil;
             return a.apply(p, n);
           }, py::arg("state"), "Make the held set equal `state` (one value per action); returns events sent.")
      .def("set", &Actuator::set, py::arg("action"), py::arg("down"))
      .def("release_all", &Actuator::release_all, py::call_guard<py::gil_scoped_release>(),
           "Release every action this actuator holds; returns events sent.")
      .def_property_readonly("held", &Actuator::held, "What this actuator holds, per action.")
      .def("system_held", &Actuator::system_held, py::call_guard<py::gil_scoped_release>(),
           "What the system (X server: XQueryKeymap and the pointer mask; Windows: GetAsyncKeyState) believes\n"
           "is down for each action, whoever pressed it.")
      .def("release_system_held", &Actuator::release_system_held, py::call_guard<py::gil_scoped_release>(),
           "Release every configured action the system has down, whoever pressed it (crash watchdog).")
      .def("move", &Actuator::move, py::arg("dx"), py::arg("dy"), py::arg("wheel") = 0,
           py::call_guard<py::gil_scoped_release>(),
           "Relative pointer motion (device units) and wheel notches (> 0 up), sent now; returns events sent.\n"
           "May be called from one other thread while the play loop sends keys.")
      .def("warp", &Actuator::warp, py::arg("x"), py::arg("y"), py::call_guard<py::gil_scoped_release>(),
           "The pointer to absolute screen pixel (x, y) (X11: root window; Windows: virtual desktop).")
      .def("__len__", &Actuator::size);
}

// Up to max items popped into buf in chunks, so a large max (a whole second of a 1000 Hz mouse) costs
// only what is actually queued, not an allocation of max items on every call.
template <typename T, typename Pop>
void drain(std::vector<T>& buf, std::size_t max, Pop pop) {
  constexpr std::size_t kChunk = 1024;
  while (buf.size() < max) {
    const std::size_t at = buf.size();
    const std::size_t want = std::min(kChunk, max - at);
    buf.resize(at + want);
    const std::size_t got = pop(buf.data() + at, want);
    buf.resize(at + got);
    if (got < want) break;
  }
}

// One NumPy array per listed field of the events in buf (the columns pop() and pop_axes() return).
template <typename E, typename... Field>
py::tuple columns(const std::vector<E>& buf, Field E::*... fields) {
  const auto n = static_cast<py::ssize_t>(buf.size());
  const auto column = [&](auto field) {
    py::array_t<std::decay_t<decltype(buf[0].*field)>> out(n);
    auto* p = out.mutable_data();
    for (py::ssize_t i = 0; i < n; ++i) p[i] = buf[static_cast<std::size_t>(i)].*field;
    return out;
  };
  return py::make_tuple(column(fields)...);
}

// The session's axis log record (engine.session.layout.AXIS_EVENT_DTYPE): t_ns <i8, axis <i2, value <f4,
// packed (14 bytes; x86 and ARM are little-endian).
constexpr std::size_t kAxisRecordBytes = 14;

void put_axis_record(std::uint8_t* at, std::int64_t t_ns, std::int16_t axis, float value) {
  std::memcpy(at, &t_ns, 8);
  std::memcpy(at + 8, &axis, 2);
  std::memcpy(at + 10, &value, 4);
}

void bind_axis_framer(py::module_& m) {
  using Ints = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
  py::class_<AxisFramer>(m, "AxisFramer",
                         "Per-frame axis values from timestamped axis events (native/input/axis_framer.hpp): a\n"
                         "relative axis sums its deltas over (t[i-1], t[i]], an absolute axis holds its value at t[i].")
      .def(py::init<std::vector<bool>, std::vector<double>>(), py::arg("relative"), py::arg("neutral"))
      .def("add_events", [](AxisFramer& f, const py::array& t_ns, const py::array& axis, const py::array& value) {
             const Ints t(t_ns);
             const Ints a(axis);  // int64, so an axis past int16 is refused rather than wrapped
             const py::array_t<float, py::array::c_style | py::array::forcecast> v(value);
             const auto n = static_cast<std::size_t>(t.size());
             if (t.ndim() != 1 || a.ndim() != 1 || v.ndim() != 1 || static_cast<std::size_t>(a.size()) != n ||
                 static_cast<std::size_t>(v.size()) != n) {
               throw InvalidArgument("axis events need three 1-D arrays of one length");
             }
             const auto k = static_cast<std::int64_t>(f.n_axes());
             for (std::size_t i = 0; i < n; ++i) {
               if (!f.accepts(t.data()[i], a.data()[i], v.data()[i])) {  // refused whole: nothing queued
                 throw InvalidArgument("axis events need t_ns > 0, axis in [0, " + std::to_string(k) +
                                       ") and finite values");
               }
             }
             std::vector<std::uint8_t> rec(n * kAxisRecordBytes);
             for (std::size_t i = 0; i < n; ++i) {
               const auto ax = static_cast<std::int16_t>(a.data()[i]);  // in [0, K): accepted above
               f.push(t.data()[i], ax, v.data()[i]);
               put_axis_record(rec.data() + kAxisRecordBytes * i, t.data()[i], ax, v.data()[i]);
             }
             f.sorted();
             return py::array_t<std::uint8_t>(static_cast<py::ssize_t>(rec.size()), rec.data());
           }, py::arg("t_ns"), py::arg("axis"), py::arg("value"),
           "Queue events (axis in [0, K)) until the frames they fall in arrive (out-of-order ones are sorted\n"
           "in); returns them as the session's axis log records (as Listener.pop_axes_into).")
      .def("skip", &AxisFramer::skip, py::arg("t0"), py::arg("t1"),
           "Relative motion in (t0, t1] is in no frame (before capture started, or paused), also if its events\n"
           "arrive later; absolute values there still set the state.")
      .def("settle", &AxisFramer::settle, py::arg("t_ns"),
           "Fold queued events at or before t_ns into the state (no frame can come before t_ns).")
      .def("frame", [](AxisFramer& f, const py::array& t_frames, std::optional<py::array> out) {
             const Ints t(t_frames);
             if (t.ndim() != 1) throw InvalidArgument("frame times need a 1-D array");
             const auto k = static_cast<py::ssize_t>(t.size());
             const auto n_axes = static_cast<py::ssize_t>(f.n_axes());
             py::array_t<float, py::array::c_style> values;
             if (out) {
               values = py::array_t<float, py::array::c_style>::ensure(*out);
               if (!values || !out->is(values) || values.ndim() != 2 || values.shape(0) != k ||
                   values.shape(1) != n_axes || !values.writeable()) {
                 throw InvalidArgument("out must be a writable C-contiguous float32 array of shape (" +
                                       std::to_string(k) + ", " + std::to_string(n_axes) + ")");
               }
             } else {
               values = py::array_t<float, py::array::c_style>({k, n_axes});
             }
             f.frame(t.data(), static_cast<std::size_t>(k), values.mutable_data());
             return values;
           }, py::arg("t_frames"), py::arg("out") = py::none(),
           "Axis values (k, K) float32 for frames captured at t_frames (increasing), continuing from the last call.")
      .def_property_readonly("queued", &AxisFramer::queued, "Events waiting for their frame.")
      .def_property_readonly("n_axes", &AxisFramer::n_axes);
}

void bind_listener(py::module_& m) {
  py::class_<Listener>(m, "Listener",
                       "Timestamped press/release events of the configured actions and hotkeys only, from a native "
                       "thread.")
      .def("start", &Listener::start)
      .def("stop", &Listener::stop, py::call_guard<py::gil_scoped_release>())
      .def("wait", [](Listener& l, double timeout) {
             py::gil_scoped_release nogil;
             l.wait(timeout < 0 ? -1 : static_cast<std::int64_t>(timeout * 1e9));
           }, py::arg("timeout") = -1.0)
      .def_property_readonly("hotkey_presses", &Listener::hotkey_presses,
                             "Hotkey presses the thread has seen so far (a cheap check between pops).")
      .def("pop", [](Listener& l, std::size_t max) {
             std::vector<InputEvent> buf;
             {
               py::gil_scoped_release nogil;
               l.collect();
               drain(buf, max, [&l](InputEvent* out, std::size_t n) { return l.pop(out, n); });
             }
             return columns(buf, &InputEvent::t_ns, &InputEvent::action, &InputEvent::value, &InputEvent::device,
                            &InputEvent::injected);
           }, py::arg("max") = 4096,
           "Events so far as (t_ns int64, action int16, value int8, device int32, injected uint8) arrays;\n"
           "action < 0 is hotkey -(action+1); device is the source device (X11: the XInput2 slave id),\n"
           "injected 1 if that device is an injection device (X11: an XTest slave; Windows: injected input).")
      .def("pop_axes", [](Listener& l, std::size_t max) {
             std::vector<AxisEvent> buf;
             {
               py::gil_scoped_release nogil;
               l.collect();
               drain(buf, max, [&l](AxisEvent* out, std::size_t n) { return l.pop_axes(out, n); });
             }
             return columns(buf, &AxisEvent::t_ns, &AxisEvent::axis, &AxisEvent::value, &AxisEvent::device,
                            &AxisEvent::injected);
           }, py::arg("max") = 65536,
           "Axis events so far as (t_ns int64, axis int16, value float32, device int32, injected uint8) arrays:\n"
           "axis indexes the configured axes; value is a relative axis' delta or an absolute axis' new value.")
      .def("pop_axes_into", [](Listener& l, AxisFramer& framer, std::size_t max) {
             std::vector<AxisEvent> buf;
             std::vector<std::uint8_t> rec;
             {
               py::gil_scoped_release nogil;
               l.collect();
               drain(buf, max, [&l](AxisEvent* out, std::size_t n) { return l.pop_axes(out, n); });
               rec.resize(buf.size() * kAxisRecordBytes);
               std::size_t n = 0;
               for (const AxisEvent& e : buf) {
                 if (framer.push(e.t_ns, e.axis, e.value)) put_axis_record(rec.data() + kAxisRecordBytes * n++, e.t_ns, e.axis, e.value);
               }
               framer.sorted();
               rec.resize(n * kAxisRecordBytes);
             }
             return py::array_t<std::uint8_t>(static_cast<py::ssize_t>(rec.size()), rec.data());
           }, py::arg("framer"), py::arg("max") = 65536,
           "Axis events so far into `framer` (an AxisFramer over the configured axes), in one call; returns\n"
           "them as the session's axis log records: bytes of (t_ns <i8, axis <i2, value <f4) packed, 14 each\n"
           "(view them as engine.session.layout.AXIS_EVENT_DTYPE).")
      .def_property_readonly("dropped", &Listener::dropped)
      .def_property_readonly("axis_dropped", &Listener::axis_dropped,
                             "Axis events lost because the axis queue was full (never drained).")
      .def_property_readonly("running", &Listener::running)
      .def_property_readonly("error", &Listener::error);
}

}  // namespace

void bind_input(py::module_& m) {
  m.def("action_names", [] {
    std::vector<std::string> out;
    for (const auto& a : action_table()) out.emplace_back(a.name);
    return out;
  }, "Every action name the engine knows, in table order.");
  m.def("action_info", [](const std::string& name) {
    const ActionKey& a = require_action(name);
    return py::dict(py::arg("name") = a.name, py::arg("x_keysym") = a.x_keysym, py::arg("x_button") = a.x_button,
                    py::arg("evdev_code") = a.evdev_code, py::arg("win_scan") = a.win_scan,
                    py::arg("win_extended") = a.win_extended, py::arg("win_vk") = a.win_vk,
                    py::arg("xinput_mask") = a.xinput_mask);
  }, py::arg("name"), "Platform codes of an action; ValueError listing the valid names if unknown.");
  bind_actuator(m);
  bind_axis_framer(m);
  bind_listener(m);

#if defined(_WIN32)
  py::class_<SendInputActuator, Actuator>(m, "SendInputActuator",
                                          "Sends press/release changes of the configured actions via SendInput.")
      .def(py::init<const std::vector<std::string>&>(), py::arg("actions"));
  py::class_<ViGEmPad>(m, "ViGEmPad", "A virtual Xbox 360 pad through ViGEm (ViGEmClient.dll loaded at run time).")
      .def(py::init<>())
      .def("update", &ViGEmPad::update, py::arg("buttons"), py::arg("lt"), py::arg("rt"), py::arg("lx"),
           py::arg("ly"), py::arg("rx"), py::arg("ry"), py::call_guard<py::gil_scoped_release>(),
           "One report: XUSB_GAMEPAD_* button bits, triggers 0..255, sticks -32768..32767 (y up).")
      .def("neutral", &ViGEmPad::neutral, py::call_guard<py::gil_scoped_release>(),
           "Sticks centred, triggers 0, buttons up.");
  py::class_<RawInputListener, Listener>(m, "RawInputListener",
                                         "Raw input (WM_INPUT) key/button events of the configured actions and "
                                         "hotkeys only.")
      .def(py::init<const std::vector<std::string>&, const std::vector<std::string>&, std::size_t,
                    const std::vector<std::string>&>(),
           py::arg("actions"), py::arg("hotkeys") = std::vector<std::string>{}, py::arg("capacity") = 65536,
           py::arg("axes") = std::vector<std::string>{},
           "axes: mouse_dx, mouse_dy, wheel (raw input) and pad_* (XInput pad 0, polled in the listener thread).");
#else
  py::class_<XTestActuator, Actuator>(m, "XTestActuator",
                                      "Sends press/release changes of the configured actions via XTest.")
      .def(py::init<const std::string&, const std::vector<std::string>&, const std::string&>(), py::arg("display"),
           py::arg("actions"), py::arg("master") = "",
           "master: send through the XTest slaves of this XInput2 master (created if missing, removed when the\n"
           "actuator closes) instead of the core ones, so its events carry another source device.")
      .def_property_readonly("devices", &XTestActuator::devices,
                             "XInput2 ids of the XTest slaves it sends through: its events' source devices.");
  py::class_<X11InputListener, Listener>(m, "X11InputListener",
                                         "XInput2 raw key/button events of the configured actions and hotkeys only.")
      .def(py::init<const std::string&, const std::vector<std::string>&, const std::vector<std::string>&,
                    std::size_t, const std::vector<std::string>&, const std::vector<int>&>(),
           py::arg("display"), py::arg("actions"), py::arg("hotkeys") = std::vector<std::string>{},
           py::arg("capacity") = 65536, py::arg("axes") = std::vector<std::string>{},
           py::arg("region") = std::vector<int>{},
           "axes: mouse_dx, mouse_dy (XI2 raw motion), wheel (raw buttons 4/5), mouse_x, mouse_y (pointer position\n"
           "in [0, 1] across region (x, y, w, h); default the screen).");
#endif
}

}  // namespace engine::py_bind
