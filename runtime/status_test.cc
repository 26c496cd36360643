#include "runtime/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <utility>

namespace surge {
namespace {

TEST(StatusTest, MapsErrnoToClosestCode) {
  const struct {
    int code;
    absl::StatusCode expected;
  } cases[] = {
      {ENOENT, absl::StatusCode::kNotFound},
      {EACCES, absl::StatusCode::kPermissionDenied},
      {EPERM, absl::StatusCode::kPermissionDenied},
      {ETIME, absl::StatusCode::kDeadlineExceeded},
      {ETIMEDOUT, absl::StatusCode::kDeadlineExceeded},
      {ECANCELED, absl::StatusCode::kCancelled},
      {EINVAL, absl::StatusCode::kInvalidArgument},
      {EEXIST, absl::StatusCode::kAlreadyExists},
      {ENOSPC, absl::StatusCode::kResourceExhausted},
      {ENOMEM, absl::StatusCode::kResourceExhausted},
      {ENOBUFS, absl::StatusCode::kResourceExhausted},
      {EMFILE, absl::StatusCode::kResourceExhausted},
      {EAGAIN, absl::StatusCode::kUnavailable},
      {ECONNRESET, absl::StatusCode::kUnavailable},
      {ECONNREFUSED, absl::StatusCode::kUnavailable},
      {EPIPE, absl::StatusCode::kUnavailable},
      {ENOTSUP, absl::StatusCode::kUnimplemented},
      {ENOSYS, absl::StatusCode::kUnimplemented},
      {ENODATA, absl::StatusCode::kOutOfRange},
      {EXDEV, absl::StatusCode::kUnknown},
      {0, absl::StatusCode::kUnknown},  // an Error is never success
  };
  for (const auto& c : cases) {
    EXPECT_EQ(status_code_for_errno(c.code), c.expected) << "errno " << c.code;
    EXPECT_EQ(to_status(Error(c.code, "op")).code(), c.expected) << "errno " << c.code;
  }
}

TEST(StatusTest, KeepsMessageAndErrno) {
  const absl::Status status = to_status(Error(ECONNRESET, "recv"));
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(absl::IsUnavailable(status));
  EXPECT_EQ(status.message(), "recv: Connection reset by peer");
  EXPECT_EQ(errno_of(status), ECONNRESET);
  EXPECT_NE(status.ToString().find("recv: Connection reset by peer"), std::string::npos) << status.ToString();
}

TEST(StatusTest, ErrnoOfStatusNotFromSurge) {
  EXPECT_EQ(errno_of(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(errno_of(absl::UnavailableError("elsewhere")), std::nullopt);
}

TEST(StatusTest, ResultVoid) {
  EXPECT_TRUE(to_status(ok()).ok());
  const absl::Status failed = to_status(Result<void>(Error(ETIMEDOUT, "connect")));
  EXPECT_TRUE(absl::IsDeadlineExceeded(failed));
  EXPECT_EQ(failed.message(), "connect: Connection timed out");
  EXPECT_EQ(errno_of(failed), ETIMEDOUT);
}

TEST(StatusTest, TransferResult) {
  EXPECT_TRUE(to_status(TransferResult(10)).ok());
  EXPECT_TRUE(absl::IsUnavailable(to_status(TransferResult(Error(EPIPE, "send"), 3))));
}

TEST(StatusTest, ResultValue) {
  const Result<int> five = 5;
  absl::StatusOr<int> copied = to_status_or(five);
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(*copied, 5);

  absl::StatusOr<int> failed = to_status_or(Result<int>(Error(ECANCELED, "accept")));
  EXPECT_TRUE(absl::IsCancelled(failed.status()));
  EXPECT_EQ(failed.status().message(), "accept: Operation canceled");
  EXPECT_EQ(errno_of(failed.status()), ECANCELED);
}

TEST(StatusTest, MoveOnlyValue) {
  Result<std::unique_ptr<int>> result = std::make_unique<int>(7);
  absl::StatusOr<std::unique_ptr<int>> moved = to_status_or(std::move(result));
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(**moved, 7);
}

}  // namespace
}  // namespace surge
