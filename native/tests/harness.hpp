// The native test binaries' harness (native_tests, native_tests_win): no framework, tests register
// themselves by name with ENGINE_TEST(name) and report one line each, "PASS name" or "FAIL name".
//
//   binary              run every test
//   binary --list       print every test name, one a line, in registration order
//   binary --run NAME   run exactly that test (exit status 2 if there is no such test)
//
// Exit status: the number of failed tests. pytest runs each test by name (tests/test_native_binary.py,
// and scripts/windows_test.sh under Wine), so a failure names the native test.
#pragma once

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace engine::testing {

struct Case {
  const char* name;
  void (*fn)();
};

inline std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}

inline int& failures() {
  static int n = 0;
  return n;
}

struct Register {
  Register(const char* name, void (*fn)()) { cases().push_back(Case{name, fn}); }
};

inline bool run_case(const Case& c) {
  const int before = failures();
  try {
    c.fn();
  } catch (const std::exception& e) {
    std::printf("    unexpected exception: %s\n", e.what());
    ++failures();
  }
  const bool ok = failures() == before;
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", c.name);
  std::fflush(stdout);
  return ok;
}

// `preamble` prints what the binary wants said before it runs tests (not with --list).
inline int main(int argc, char** argv, void (*preamble)() = nullptr) {
  const std::string arg = argc > 1 ? argv[1] : "";
  if (arg == "--list") {
    for (const Case& c : cases()) std::printf("%s\n", c.name);
    return 0;
  }
  if (arg == "--run" && argc != 3) {
    std::fprintf(stderr, "usage: %s [--list | --run NAME]\n", argv[0]);
    return 2;
  }
  if (preamble != nullptr) preamble();
  if (arg == "--run") {
    for (const Case& c : cases()) {
      if (std::strcmp(c.name, argv[2]) == 0) return run_case(c) ? 0 : 1;
    }
    std::fprintf(stderr, "no test named '%s' (--list shows them)\n", argv[2]);
    return 2;
  }
  int failed = 0;
  for (const Case& c : cases()) failed += run_case(c) ? 0 : 1;
  return failed;
}

}  // namespace engine::testing

// Defines and registers test `name` (in an anonymous namespace of the test file).
#define ENGINE_TEST(name)                                                \
  void test_##name();                                                    \
  const ::engine::testing::Register register_##name{#name, &test_##name}; \
  void test_##name()

// Fails the current test (and returns from it) when cond is false.
#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::printf("    CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      ++::engine::testing::failures();                                           \
      return;                                                                    \
    }                                                                            \
  } while (0)
