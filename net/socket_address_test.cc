#include "net/socket_address.h"

#include <gtest/gtest.h>

#include <string>

namespace surge {
namespace {

TEST(SocketAddressTest, ParsesIpv4) {
  auto address = SocketAddress::parse("127.0.0.1:8080");
  ASSERT_TRUE(address) << address.error().message();
  EXPECT_EQ(address->family(), AF_INET);
  EXPECT_EQ(address->port(), 8080);
  EXPECT_EQ(address->to_string(), "127.0.0.1:8080");
  EXPECT_EQ(*address, SocketAddress::ipv4_loopback(8080));
}

TEST(SocketAddressTest, ParsesIpv6) {
  auto address = SocketAddress::parse("[::1]:443");
  ASSERT_TRUE(address) << address.error().message();
  EXPECT_EQ(address->family(), AF_INET6);
  EXPECT_EQ(address->port(), 443);
  EXPECT_EQ(address->to_string(), "[::1]:443");
  EXPECT_EQ(*address, SocketAddress::ipv6_loopback(443));
}

TEST(SocketAddressTest, PortZeroAndLimits) {
  EXPECT_EQ(SocketAddress::parse("0.0.0.0:0")->port(), 0);
  EXPECT_EQ(SocketAddress::parse("0.0.0.0:65535")->port(), 65535);
}

TEST(SocketAddressTest, RoundTripsThroughText) {
  for (const char* text : {"10.1.2.3:1", "[fe80::1:2]:9000", "[::]:0", "255.255.255.255:65535"}) {
    auto address = SocketAddress::parse(text);
    ASSERT_TRUE(address) << text;
    auto again = SocketAddress::parse(address->to_string());
    ASSERT_TRUE(again) << address->to_string();
    EXPECT_EQ(*address, *again) << text;
  }
}

TEST(SocketAddressTest, WithPort) {
  EXPECT_EQ(SocketAddress::ipv4_loopback(1).with_port(2), SocketAddress::ipv4_loopback(2));
  EXPECT_EQ(SocketAddress::ipv6_loopback(1).with_port(2), SocketAddress::ipv6_loopback(2));
}

class BadAddressTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BadAddressTest, IsRejectedWithEinvalAndAReason) {
  auto address = SocketAddress::parse(GetParam());
  ASSERT_FALSE(address) << GetParam() << " was accepted as " << address->to_string();
  EXPECT_EQ(address.error().code(), EINVAL);
  EXPECT_NE(std::string(address.error().operation()).find("parse socket address"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Inputs, BadAddressTest,
                         ::testing::Values("", ":", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536",
                                           "127.0.0.1:-1", "127.0.0.1:80x", "127.0.0.1:0x50", "127.0.0.1:123456",
                                           "256.0.0.1:80", "1.2.3:80", "localhost:80", "::1:80", "[::1]",
                                           "[::1]80", "[::1:80", "[]:80", "[127.0.0.1]:80", "[::g]:80",
                                           "1.2.3.4 :80", " 1.2.3.4:80",
                                           "[aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa:aaaa]:1"));

TEST(SocketAddressTest, FromSockaddrRejectsOtherFamilies) {
  sockaddr_storage storage{};
  storage.ss_family = AF_UNIX;
  auto address = SocketAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&storage), sizeof(storage));
  ASSERT_FALSE(address);
  EXPECT_EQ(address.error().code(), EAFNOSUPPORT);
  EXPECT_FALSE(SocketAddress::from_sockaddr(nullptr, 0));
}

}  // namespace
}  // namespace surge
