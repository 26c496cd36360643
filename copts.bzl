"""Compiler flags shared by every surge target (the idea of abseil's ABSL_DEFAULT_COPTS)."""

SURGE_DEFAULT_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Werror=return-type",
]

# Tests and benchmarks use the same warnings; GoogleTest macros trip -Wsign-compare only in our code.
SURGE_TEST_COPTS = SURGE_DEFAULT_COPTS
