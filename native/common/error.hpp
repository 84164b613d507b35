// Error types thrown by the native core. The bindings map each to a Python exception class, so the
// message is the one line the user reads: say what is wrong and what to do.
#pragma once

#include <stdexcept>
#include <string>

namespace engine {

// Bad input from the caller: a region off screen, a window that does not exist, a bad size.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The display or OS refused: no display, extension missing, window gone while capturing.
class CaptureError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The captured window disappeared (destroyed or unmapped). Play treats this as an exit path.
class WindowLost : public CaptureError {
 public:
  using CaptureError::CaptureError;
};

}  // namespace engine
