// latency_histogram.h: a fixed-size log-linear histogram of durations (64 buckets per power of two, so a
// quantile is within 1.6 % of the true value), recorded without allocating, for load generators that
// record every round trip.
//
//   LatencyHistogram histogram;
//   histogram.record(std::chrono::steady_clock::now() - start);
//   const auto p99 = histogram.quantile(0.99);
#ifndef SURGE_BENCH_LATENCY_HISTOGRAM_H_
#define SURGE_BENCH_LATENCY_HISTOGRAM_H_

#include <array>
#include <bit>
#include <chrono>
#include <cstdint>

namespace surge::bench {

class LatencyHistogram {
 public:
  void record(std::chrono::nanoseconds duration) noexcept {
    const auto nanos = static_cast<std::uint64_t>(duration.count() > 0 ? duration.count() : 0);
    ++buckets_[bucket_of(nanos)];
    ++count_;
  }

  std::uint64_t count() const noexcept { return count_; }

  // The smallest recorded value v such that a fraction >= q of the records is <= v (bucket resolution).
  std::chrono::nanoseconds quantile(double q) const noexcept {
    if (count_ == 0) return std::chrono::nanoseconds::zero();
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t bucket = 0; bucket < buckets_.size(); ++bucket) {
      seen += buckets_[bucket];
      if (seen >= rank) return std::chrono::nanoseconds(static_cast<std::int64_t>(upper_bound_of(bucket)));
    }
    return std::chrono::nanoseconds::max();
  }

 private:
  static constexpr int kSubBucketBits = 6;  // 64 linear buckets per power of two
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBucketBits;

  static std::size_t bucket_of(std::uint64_t nanos) noexcept {
    if (nanos < kSubBuckets) return static_cast<std::size_t>(nanos);
    const int exponent = std::bit_width(nanos) - 1;  // >= kSubBucketBits
    const int shift = exponent - kSubBucketBits;
    const std::uint64_t sub = (nanos >> shift) & (kSubBuckets - 1);
    return static_cast<std::size_t>((static_cast<std::uint64_t>(shift + 1) << kSubBucketBits) + sub);
  }

  static std::uint64_t upper_bound_of(std::size_t bucket) noexcept {
    if (bucket < kSubBuckets) return bucket;
    const int shift = static_cast<int>(bucket >> kSubBucketBits) - 1;
    const std::uint64_t sub = bucket & (kSubBuckets - 1);
    return ((kSubBuckets | sub) << shift) + ((std::uint64_t{1} << shift) - 1);
  }

  // Buckets up to 2^64 ns: (64 - kSubBucketBits + 1) groups of 64.
  std::array<std::uint64_t, (64 - kSubBucketBits + 1) * kSubBuckets> buckets_{};
  std::uint64_t count_ = 0;
};

}  // namespace surge::bench

#endif  // SURGE_BENCH_LATENCY_HISTOGRAM_H_
