"""Compiler flags shared by every surge target (the idea of abseil's ABSL_DEFAULT_COPTS)."""

SURGE_DEFAULT_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Werror=return-type",
    # gcc 12 warns on designated initializers that leave members to their default member initializers
    # (`WorkerOptions{.backend = ...}`), which is exactly how our option structs are meant to be used.
    "-Wno-missing-field-initializers",
]

# Tests and benchmarks use the same warnings.
SURGE_TEST_COPTS = SURGE_DEFAULT_COPTS
