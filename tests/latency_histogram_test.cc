// bench/latency_histogram.h: quantiles within the promised 1.6 % of the exact ones, edge cases.
#include "bench/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace surge::bench {
namespace {

using std::chrono::nanoseconds;

TEST(LatencyHistogramTest, EmptyHistogramReportsZero) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.count(), 0u);
  EXPECT_EQ(histogram.quantile(0.5), nanoseconds::zero());
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram histogram;
  for (int i = 1; i <= 50; ++i) histogram.record(nanoseconds(i));
  EXPECT_EQ(histogram.quantile(0.0), nanoseconds(1));
  EXPECT_EQ(histogram.quantile(1.0), nanoseconds(50));
  EXPECT_EQ(histogram.quantile(0.5), nanoseconds(25));
}

TEST(LatencyHistogramTest, NegativeDurationsCountAsZero) {
  LatencyHistogram histogram;
  histogram.record(nanoseconds(-5));
  EXPECT_EQ(histogram.count(), 1u);
  EXPECT_EQ(histogram.quantile(1.0), nanoseconds::zero());
}

TEST(LatencyHistogramTest, QuantilesMatchSortedSamplesWithinResolution) {
  std::mt19937_64 random(12345);
  std::lognormal_distribution<double> latency(11.0, 1.5);  // around 60 us, long tail
  std::vector<long long> samples;
  LatencyHistogram histogram;
  for (int i = 0; i < 100000; ++i) {
    const auto value = static_cast<long long>(latency(random));
    samples.push_back(value);
    histogram.record(nanoseconds(value));
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.01, 0.5, 0.9, 0.99, 0.999}) {
    const double exact = static_cast<double>(samples[static_cast<std::size_t>(q * (samples.size() - 1))]);
    const double estimate = static_cast<double>(histogram.quantile(q).count());
    EXPECT_GE(estimate, exact) << "q=" << q;  // reports the bucket's upper bound
    EXPECT_LE(estimate, exact * 1.016 + 1) << "q=" << q;
  }
}

TEST(LatencyHistogramTest, HugeValuesDoNotOverflow) {
  LatencyHistogram histogram;
  histogram.record(nanoseconds::max());
  histogram.record(nanoseconds(1));
  EXPECT_EQ(histogram.quantile(0.0), nanoseconds(1));
  EXPECT_GE(histogram.quantile(1.0), nanoseconds(nanoseconds::max().count() / 2));
}

}  // namespace
}  // namespace surge::bench
