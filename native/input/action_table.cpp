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
    t.push_back({letter_names[i], static_cast<unsigned long>(l.c), 0, l.code, l.code, false, l.c - 'a' + 'A'});
  }
  static const char* digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  for (int d = 0; d < 10; ++d) {
    const int code = d == 0 ? 11 : d + 1;  // KEY_1 = 2 ... KEY_9 = 10, KEY_0 = 11
    t.push_back({digit_names[d], static_cast<unsigned long>('0' + d), 0, code, code, false, '0' + d});
  }
  const ActionKey named[] = {
      {"left", 0xff51, 0, 105, 0x4B, true, 0x25},
      {"up", 0xff52, 0, 103, 0x48, true, 0x26},
      {"right", 0xff53, 0, 106, 0x4D, true, 0x27},
      {"down", 0xff54, 0, 108, 0x50, true, 0x28},
      {"space", 0x0020, 0, 57, 0x39, false, 0x20},
      {"enter", 0xff0d, 0, 28, 0x1C, false, 0x0D},
      {"escape", 0xff1b, 0, 1, 0x01, false, 0x1B},
      {"tab", 0xff09, 0, 15, 0x0F, false, 0x09},
      {"backspace", 0xff08, 0, 14, 0x0E, false, 0x08},
      {"shift", 0xffe1, 0, 42, 0x2A, false, 0xA0},
      {"rshift", 0xffe2, 0, 54, 0x36, false, 0xA1},
      {"ctrl", 0xffe3, 0, 29, 0x1D, false, 0xA2},
      {"rctrl", 0xffe4, 0, 97, 0x1D, true, 0xA3},
      {"alt", 0xffe9, 0, 56, 0x38, false, 0xA4},
      {"ralt", 0xffea, 0, 100, 0x38, true, 0xA5},
      {"f1", 0xffbe, 0, 59, 0x3B, false, 0x70},
      {"f2", 0xffbf, 0, 60, 0x3C, false, 0x71},
      {"f3", 0xffc0, 0, 61, 0x3D, false, 0x72},
      {"f4", 0xffc1, 0, 62, 0x3E, false, 0x73},
      {"f5", 0xffc2, 0, 63, 0x3F, false, 0x74},
      {"f6", 0xffc3, 0, 64, 0x40, false, 0x75},
      {"f7", 0xffc4, 0, 65, 0x41, false, 0x76},
      {"f8", 0xffc5, 0, 66, 0x42, false, 0x77},
      {"f9", 0xffc6, 0, 67, 0x43, false, 0x78},
      {"f10", 0xffc7, 0, 68, 0x44, false, 0x79},
      {"f11", 0xffc8, 0, 87, 0x57, false, 0x7A},
      {"f12", 0xffc9, 0, 88, 0x58, false, 0x7B},
      {"mouse_left", 0, 1, 0x110, 0, false, 0x01},
      {"mouse_right", 0, 3, 0x111, 0, false, 0x02},
      {"mouse_middle", 0, 2, 0x112, 0, false, 0x04},
  };
  t.insert(t.end(), std::begin(named), std::end(named));
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

}  // namespace engine
