// The one table of action names the engine understands, mapped to each platform's codes: X11 keysyms
// (and pointer buttons), Linux evdev codes (linux/input-event-codes.h) and Windows set-1 scan codes
// (with the extended-key flag SendInput needs for arrows and right-hand modifiers), and for gamepad
// buttons the XInput button mask (never a virtual key: a pad button is not a key to Windows).
// Only names in this table can be recorded or actuated; nothing else is ever looked at.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace engine {

struct ActionKey {
  const char* name;
  unsigned long x_keysym;  // 0 for pointer buttons
  int x_button;            // X pointer button (1 left, 2 middle, 3 right); 0 for keys
  int evdev_code;          // KEY_* or BTN_*
  int win_scan;            // set-1 make code; 0 for mouse buttons
  bool win_extended;       // send with KEYEVENTF_EXTENDEDKEY
  int win_vk;              // virtual-key code (what mouse buttons and raw input report); 0 for pad buttons
  int xinput_mask;         // XINPUT_GAMEPAD_* bit of a gamepad button; 0 for everything else
};

// Gamepad buttons exist for evdev (BTN_*), uinput pads and XInput only.
inline bool is_pad_button(const ActionKey& a) { return a.xinput_mask != 0; }

const std::vector<ActionKey>& action_table();
// nullptr when unknown.
const ActionKey* find_action(std::string_view name);
// Throws InvalidArgument("unknown action 'x'; valid names: ...") for an unknown name.
const ActionKey& require_action(std::string_view name);
std::string action_names();  // comma-separated, table order
// require_action for X11, which has no gamepad: a pad button is an InvalidArgument saying what it needs
// (output: for XTest, "needs a uinput pad output"; else for the listener, "needs an evdev input").
const ActionKey& require_x11_action(std::string_view name, bool output);

}  // namespace engine
