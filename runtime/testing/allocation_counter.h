// allocation_counter.h: counts the calls to the global operator new made anywhere in the process, for
// tests and benchmarks that hold the hot path to "no allocation per operation".
//
// Linking the `allocation_counter` target replaces the global operator new and delete (with malloc and
// free plus one relaxed atomic increment), so link it only into test and benchmark binaries.
//
//   const auto before = surge::testing::allocation_count();
//   ... a thousand echo round trips ...
//   EXPECT_EQ(surge::testing::allocation_count() - before, 0u);
#ifndef SURGE_RUNTIME_TESTING_ALLOCATION_COUNTER_H_
#define SURGE_RUNTIME_TESTING_ALLOCATION_COUNTER_H_

#include <cstdint>

namespace surge::testing {

// Calls to any form of global operator new since the process started. Safe from any thread.
std::uint64_t allocation_count() noexcept;

// The calls made by the calling thread only (so that a monitoring thread can leave its own out).
std::uint64_t thread_allocation_count() noexcept;

}  // namespace surge::testing

#endif  // SURGE_RUNTIME_TESTING_ALLOCATION_COUNTER_H_
