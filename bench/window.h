// window.h: what the load generators (load_generator.cc, http_load.cc) share around their drivers: the
// measurement window's phases, and joining the driver tasks. Header-only, for bench/ only.
//
//   std::vector<surge::JoinHandle<surge::Result<void>>> drivers = ...;   // spawned on this worker, each
//                                                                         // loops until shared.phase is kStop
//   if (auto finished = co_await surge::bench::run_window(options, shared, drivers); !finished) ...
#ifndef SURGE_BENCH_WINDOW_H_
#define SURGE_BENCH_WINDOW_H_

#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "runtime/join_handle.h"
#include "runtime/result.h"
#include "runtime/task.h"
#include "runtime/time.h"
#include "runtime/when.h"

namespace surge::bench {

// Where the drivers are: warming up (not counted), measuring, or asked to stop.
enum class Phase { kWarmup, kMeasure, kStop };

// Awaits every task of `handles` and returns the first error, once all have returned (none is left
// running, whatever failed). `handles` must outlive the returned task.
inline Task<Result<void>> join_all(std::vector<JoinHandle<Result<void>>>* handles) {
  std::optional<Error> first_error;
  for (auto& handle : *handles) {
    auto outcome = co_await std::move(handle);
    if (!outcome && !first_error) first_error = outcome.error();
  }
  if (first_error) co_return *first_error;
  co_return ok();
}

// The warm-up, then the window (its edges call options.at_window_start / at_window_end, and its length
// goes to shared.result.elapsed), then kStop; returns once every driver has finished, or ETIMEDOUT after
// 10 s (a server that stopped answering must not hang the benchmark). `Options` has warmup, window and
// the two callbacks; `Shared` has phase and result.elapsed.
template <typename Options, typename Shared>
Task<Result<void>> run_window(const Options& options, Shared& shared, std::vector<JoinHandle<Result<void>>>& drivers) {
  using Clock = std::chrono::steady_clock;
  (void)co_await sleep_for(options.warmup);
  if (options.at_window_start) options.at_window_start();
  const auto start = Clock::now();
  shared.phase = Phase::kMeasure;
  (void)co_await sleep_for(options.window);
  shared.phase = Phase::kStop;
  shared.result.elapsed = Clock::now() - start;
  if (options.at_window_end) options.at_window_end();
  co_return co_await timeout(std::chrono::seconds(10), join_all(&drivers));
}

}  // namespace surge::bench

#endif  // SURGE_BENCH_WINDOW_H_
