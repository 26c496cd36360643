// UnixAddress: paths, abstract names, limits, printable forms, kernel round trips.
#include "net/unix_address.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace surge {
namespace {

TEST(UnixAddressTest, PathKeepsItsNameAndTerminator) {
  auto address = UnixAddress::path("/tmp/a.sock");
  ASSERT_TRUE(address) << address.error().message();
  EXPECT_TRUE(address->is_path());
  EXPECT_EQ(address->name(), "/tmp/a.sock");
  EXPECT_STREQ(address->path_c_str(), "/tmp/a.sock");
  EXPECT_EQ(address->to_string(), "/tmp/a.sock");
  EXPECT_EQ(address->size(), offsetof(sockaddr_un, sun_path) + 12);
}

TEST(UnixAddressTest, AbstractNamePrintsWithAt) {
  auto address = UnixAddress::abstract("app");
  ASSERT_TRUE(address);
  EXPECT_TRUE(address->is_abstract());
  EXPECT_EQ(address->name(), "app");
  EXPECT_EQ(address->to_string(), "@app");
  EXPECT_EQ(address->size(), offsetof(sockaddr_un, sun_path) + 4) << "no trailing NUL: abstract names count by length";
  auto with_binary = UnixAddress::abstract(std::string_view("a\0b\x7f", 4));
  ASSERT_TRUE(with_binary);
  EXPECT_EQ(with_binary->to_string(), "@a\\x00b\\x7f");
  EXPECT_EQ(with_binary->name().size(), 4u);
}

TEST(UnixAddressTest, ParseTellsAbstractFromPath) {
  EXPECT_TRUE(UnixAddress::parse("@x")->is_abstract());
  EXPECT_TRUE(UnixAddress::parse("x")->is_path());
  EXPECT_TRUE(UnixAddress::parse("@")->is_abstract());
  EXPECT_EQ(UnixAddress::parse("@")->name(), "");
  EXPECT_EQ(*UnixAddress::parse("@x"), *UnixAddress::abstract("x"));
  EXPECT_FALSE(*UnixAddress::parse("@x") == *UnixAddress::path("x"));
  EXPECT_EQ(*UnixAddress::parse(UnixAddress::path("/a/b")->to_string()), *UnixAddress::path("/a/b"));
}

TEST(UnixAddressTest, LimitsAreErrorsThatSayWhy) {
  const std::string longest(107, 'p');
  EXPECT_TRUE(UnixAddress::path(longest));
  EXPECT_TRUE(UnixAddress::abstract(longest));
  auto too_long = UnixAddress::path(longest + "p");
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code(), ENAMETOOLONG);
  EXPECT_NE(too_long.error().message().find("path longer than 107 bytes"), std::string::npos) << too_long.error().message();
  auto abstract_too_long = UnixAddress::abstract(longest + "p");
  ASSERT_FALSE(abstract_too_long);
  EXPECT_EQ(abstract_too_long.error().code(), ENAMETOOLONG);
  EXPECT_EQ(UnixAddress::path("").error().code(), EINVAL);
  EXPECT_EQ(UnixAddress::path(std::string_view("a\0b", 3)).error().code(), EINVAL);
}

TEST(UnixAddressTest, UnnamedAndForeignAddresses) {
  const UnixAddress unnamed = UnixAddress::unnamed();
  EXPECT_TRUE(unnamed.is_unnamed());
  EXPECT_EQ(unnamed.to_string(), "(unnamed)");
  sockaddr_in ip{};
  ip.sin_family = AF_INET;
  auto foreign = UnixAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&ip), sizeof(ip));
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code(), EAFNOSUPPORT);
}

TEST(UnixAddressTest, KernelReportsTheSameAddressBack) {
  // Bazel's TEST_TMPDIR is longer than sockaddr_un allows: a short name under /tmp.
  const std::string path = "/tmp/surge-unix-address-test-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  auto address = UnixAddress::path(path);
  ASSERT_TRUE(address);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::bind(fd, address->data(), address->size()), 0) << strerror(errno);
  auto local = UnixAddress::local_of(fd);
  ASSERT_TRUE(local);
  EXPECT_EQ(*local, *address);
  ::close(fd);
  ::unlink(path.c_str());

  auto abstract = UnixAddress::abstract("surge-unix-address-test");
  const int fd2 = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::bind(fd2, abstract->data(), abstract->size()), 0) << strerror(errno);
  EXPECT_EQ(*UnixAddress::local_of(fd2), *abstract);
  // Autobind: binding the unnamed address gives a fresh abstract name.
  const int fd3 = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const UnixAddress unnamed = UnixAddress::unnamed();
  ASSERT_EQ(::bind(fd3, unnamed.data(), unnamed.size()), 0) << strerror(errno);
  EXPECT_TRUE(UnixAddress::local_of(fd3)->is_abstract());
  ::close(fd2);
  ::close(fd3);
}

}  // namespace
}  // namespace surge
