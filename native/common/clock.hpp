// One monotonic clock for the whole engine, in int64 nanoseconds (shared/DESIGN.md "Contracts").
// Linux: CLOCK_MONOTONIC (the clock evdev and clock_nanosleep use too). Windows: QueryPerformanceCounter.
#pragma once

#include <cstdint>

#if defined(_WIN32)
#include "common/win32.hpp"
#else
#include <time.h>
#endif

namespace engine {

#if defined(_WIN32)
inline std::int64_t qpc_frequency() {
  static const std::int64_t freq = [] {
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    return static_cast<std::int64_t>(f.QuadPart);
  }();
  return freq;
}

// QPC ticks to ns without overflow: split into whole seconds and remainder.
inline std::int64_t monotonic_ns() {
  LARGE_INTEGER c;
  QueryPerformanceCounter(&c);
  const std::int64_t f = qpc_frequency();
  const std::int64_t t = static_cast<std::int64_t>(c.QuadPart);
  return (t / f) * 1'000'000'000LL + (t % f) * 1'000'000'000LL / f;
}
#else
inline std::int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}
#endif

}  // namespace engine
