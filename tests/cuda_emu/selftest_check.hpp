// The check harness of the emulator's plain-main() self-tests: CHECK(cond) counts a check
// and prints the failing condition with its line; main() ends with
// `return SelftestSummary("name");`, whose exit status is the number of failed checks.
#pragma once

#include <cstdio>
#include <string>

namespace selftest {

inline int failures = 0;
inline int checks = 0;

inline void Check(bool ok, const std::string& what, int line) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("FAIL (line %d): %s\n", line, what.c_str());
  }
}

inline int Summary(const char* name) {
  std::printf("%s: %d checks, %d failed\n", name, checks, failures);
  return failures;
}

}  // namespace selftest

#define CHECK(cond) ::selftest::Check((cond), #cond, __LINE__)
