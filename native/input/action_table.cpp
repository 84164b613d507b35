#include "input/action_table.hpp"

#include "common/error.hpp"

namespace engine {

namespace {

// Keysyms: X11/keysymdef.h. evdev: linux/input-event-codes.h. Scan codes: "Keyboard Scan Code
// Specification" (set 1) as used by SendInput with KEYEVENTF_SCANCODE; for these keys the evdev KEY_*
// value equals the set-1 make code, except the extended keys, whose make code follows an E0 prefix.
std::vector<ActionKey> build() {
  std::vector<ActionKey> t;
  // Letters: keysym 'a'.., evdev == set-1 scan code; VK is the upper-case ASCII letter.
  const struct { char c; int code; } letters[] = {
      {'a', 30}, {'b', 48}, {'c', 46}, {'d', 32}, {'e', 18}, {'f', 33}, {'g', 34}, {'h', 35}, {'i', 23},
      {'j', 36}, {'k', 37}, {'l', 38}, {'m', 50}, {'n', 49}, {'o', 24}, {'p', 25}, {'q', 16}, {'r', 19},
      {'s', 31}, {'t', 20}, {'u', 22}, {'v', 47}, {'w', 17}, {'x', 45}, {'y', 21}, {'z', 44}};
  static const char* letter_names[26] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
                                         "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z"};
  for (int i = 0; i < 26; ++i) {
    const auto& l = letters[i];
    t.push_back({letter_names[i], static_cast<unsigned long>(l.c), 0, l.code, l.code, false, l.c - 'a' + 'A', 0});
  }
  static const char* digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  for (int d = 0; d < 10; ++d) {
    const int code = d == 0 ? 11 : d + 1;  // KEY_1 = 2 ... KEY_9 = 10, KEY_0 = 11
    t.push_back({digit_names[d], static_cast<unsigned long>('0' + d), 0, code, code, false, '0' + d, 0});
  }
  const ActionKey named[] = {
      {"left", 0xff51, 0, 105, 0x4B, true, 0x25, 0},
      {"up", 0xff52, 0, 103, 0x48, true, 0x26, 0},
      {"right", 0xff53, 0, 106, 0x4D, true, 0x27, 0},
      {"down", 0xff54, 0, 108, 0x50, true, 0x28, 0},
      {"space", 0x0020, 0, 57, 0x39, false, 0x20, 0},
      {"enter", 0xff0d, 0, 28, 0x1C, false, 0x0D, 0},
      {"escape", 0xff1b, 0, 1, 0x01, false, 0x1B, 0},
      {"tab", 0xff09, 0, 15, 0x0F, false, 0x09, 0},
      {"backspace", 0xff08, 0, 14, 0x0E, false, 0x08, 0},
      {"shift", 0xffe1, 0, 42, 0x2A, false, 0xA0, 0},
      {"rshift", 0xffe2, 0, 54, 0x36, false, 0xA1, 0},
      {"ctrl", 0xffe3, 0, 29, 0x1D, false, 0xA2, 0},
      {"rctrl", 0xffe4, 0, 97, 0x1D, true, 0xA3, 0},
      {"alt", 0xffe9, 0, 56, 0x38, false, 0xA4, 0},
      {"ralt", 0xffea, 0, 100, 0x38, true, 0xA5, 0},
      {"f1", 0xffbe, 0, 59, 0x3B, false, 0x70, 0},
      {"f2", 0xffbf, 0, 60, 0x3C, false, 0x71, 0},
      {"f3", 0xffc0, 0, 61, 0x3D, false, 0x72, 0},
      {"f4", 0xffc1, 0, 62, 0x3E, false, 0x73, 0},
      {"f5", 0xffc2, 0, 63, 0x3F, false, 0x74, 0},
      {"f6", 0xffc3, 0, 64, 0x40, false, 0x75, 0},
      {"f7", 0xffc4, 0, 65, 0x41, false, 0x76, 0},
      {"f8", 0xffc5, 0, 66, 0x42, false, 0x77, 0},
      {"f9", 0xffc6, 0, 67, 0x43, false, 0x78, 0},
      {"f10", 0xffc7, 0, 68, 0x44, false, 0x79, 0},
      {"f11", 0xffc8, 0, 87, 0x57, false, 0x7A, 0},
      {"f12", 0xffc9, 0, 88, 0x58, false, 0x7B, 0},
      {"mouse_left", 0, 1, 0x110, 0, false, 0x01, 0},
      {"mouse_right", 0, 3, 0x111, 0, false, 0x02, 0},
      {"mouse_middle", 0, 2, 0x112, 0, false, 0x04, 0},
  };
  t.insert(t.end(), std::begin(named), std::end(named));
  // Gamepad buttons: evdev codes as the kernel's xpad driver reports an Xbox pad (BTN_A = BTN_SOUTH,
  // BTN_X = BTN_NORTH, ...; Documentation/input/gamepad.rst) and XInput's XINPUT_GAMEPAD_* masks.
  // No X11 keysym or button (X11 has no gamepad events) and no scan code or VK (not a key).
  // https://learn.microsoft.com/windows/win32/api/xinput/ns-xinput-xinput_gamepad
  const ActionKey pad[] = {
      {"pad_a", 0, 0, 0x130, 0, false, 0, 0x1000},      // BTN_SOUTH, XINPUT_GAMEPAD_A
      {"pad_b", 0, 0, 0x131, 0, false, 0, 0x2000},      // BTN_EAST, B
      {"pad_x", 0, 0, 0x133, 0, false, 0, 0x4000},      // BTN_NORTH (BTN_X), X
      {"pad_y", 0, 0, 0x134, 0, false, 0, 0x8000},      // BTN_WEST (BTN_Y), Y
      {"pad_lb", 0, 0, 0x136, 0, false, 0, 0x0100},     // BTN_TL, LEFT_SHOULDER
      {"pad_rb", 0, 0, 0x137, 0, false, 0, 0x0200},     // BTN_TR, RIGHT_SHOULDER
      {"pad_back", 0, 0, 0x13a, 0, false, 0, 0x0020},   // BTN_SELECT, BACK
      {"pad_start", 0, 0, 0x13b, 0, false, 0, 0x0010},  // BTN_START, START
      {"pad_ls", 0, 0, 0x13d, 0, false, 0, 0x0040},     // BTN_THUMBL, LEFT_THUMB
      {"pad_rs", 0, 0, 0x13e, 0, false, 0, 0x0080},     // BTN_THUMBR, RIGHT_THUMB
      {"pad_up", 0, 0, 0x220, 0, false, 0, 0x0001},     // BTN_DPAD_UP (or ABS_HAT0Y < 0), DPAD_UP
      {"pad_down", 0, 0, 0x221, 0, false, 0, 0x0002},   // BTN_DPAD_DOWN (ABS_HAT0Y > 0)
      {"pad_left", 0, 0, 0x222, 0, false, 0, 0x0004},   // BTN_DPAD_LEFT (ABS_HAT0X < 0)
      {"pad_right", 0, 0, 0x223, 0, false, 0, 0x0008},  // BTN_DPAD_RIGHT (ABS_HAT0X > 0)
  };
  t.insert(t.end(), std::begin(pad), std::end(pad));
  return t;
}

}  // namespace

const std::vector<ActionKey>& action_table() {
  static const std::vector<ActionKey> table = build();
  return table;
}

const ActionKey* find_action(std::string_view name) {
  for (const auto& a : action_table()) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

std::string action_names() {
  std::string out;
  for (const auto& a : action_table()) {
    if (!out.empty()) out += ", ";
    out += a.name;
  }
  return out;
}

const ActionKey& require_action(std::string_view name) {
  if (const ActionKey* a = find_action(name)) return *a;
  throw InvalidArgument("unknown action '" + std::string(name) + "'; valid names: " + action_names());
}

const ActionKey& require_x11_action(std::string_view name, bool output) {
  const ActionKey& a = require_action(name);
  if (is_pad_button(a)) {
    const std::string n(name);
    throw InvalidArgument(output ? "'" + n + "' is a gamepad button, which XTest cannot press: " + n +
                                       " needs a uinput pad output"
                                 : "'" + n + "' is a gamepad button, which X11 does not report: " + n +
                                       " needs an evdev input (--input evdev --pad NAME)");
  }
  return a;
}

}  // namespace engine
