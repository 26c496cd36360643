#include "runtime/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace surge {
namespace {

TEST(ResultTest, HoldsValue) {
  Result<int> result = 5;
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 5);
}

TEST(ResultTest, HoldsError) {
  Result<int> result = Error(ECONNRESET, "recv");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ECONNRESET);
  EXPECT_EQ(result.error().message(), "recv: Connection reset by peer");
  EXPECT_EQ(result.error().error_code(), std::error_code(ECONNRESET, std::system_category()));
}

TEST(ResultTest, MoveOnlyValue) {
  Result<std::unique_ptr<int>> result = std::make_unique<int>(3);
  std::unique_ptr<int> taken = *std::move(result);
  EXPECT_EQ(*taken, 3);
}

TEST(ResultTest, VoidResult) {
  Result<void> success = ok();
  EXPECT_TRUE(success);
  Result<void> failure = Error(EPIPE, "send");
  EXPECT_FALSE(failure);
  EXPECT_EQ(failure.error().operation(), std::string("send"));
}

TEST(ResultTest, DistinctOutcomes) {
  EXPECT_TRUE(Error(ECANCELED, "recv").is_cancelled());
  EXPECT_FALSE(Error(ECANCELED, "recv").is_timed_out());
  EXPECT_TRUE(Error(ETIMEDOUT, "recv").is_timed_out());
  EXPECT_TRUE(Error::from_result(-ENODATA, "read_exact").is_unexpected_eof());
}

}  // namespace
}  // namespace surge
