// join_all.h: awaits every task of a batch the load generators spawned and returns the first error, once
// all have returned (none is left running, whatever failed). Header-only, for bench/ only.
//
//   std::vector<surge::JoinHandle<surge::Result<void>>> drivers = ...;   // spawned on this worker
//   if (auto finished = co_await surge::bench::join_all(&drivers); !finished) co_return finished.error();
#ifndef SURGE_BENCH_JOIN_ALL_H_
#define SURGE_BENCH_JOIN_ALL_H_

#include <optional>
#include <utility>
#include <vector>

#include "runtime/join_handle.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge::bench {

// `handles` must outlive the returned task.
inline Task<Result<void>> join_all(std::vector<JoinHandle<Result<void>>>* handles) {
  std::optional<Error> first_error;
  for (auto& handle : *handles) {
    auto outcome = co_await std::move(handle);
    if (!outcome && !first_error) first_error = outcome.error();
  }
  if (first_error) co_return *first_error;
  co_return ok();
}

}  // namespace surge::bench

#endif  // SURGE_BENCH_JOIN_ALL_H_
