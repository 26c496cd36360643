// TlsStream over real loopback sockets, on every backend, with certificates made at test time by the
// openssl command line: handshake and 1 MiB echoed both ways at once, ALPN, a wrong host name and a
// self-signed server refused with the reason, garbage instead of a ClientHello, truncation (no
// close_notify) told apart from a clean close.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "net/socket_address.h"
#include "net/tcp_listener.h"
#include "net/tcp_stream.h"
#include "net/tls/tls_context.h"
#include "net/tls/tls_stream.h"
#include "runtime/testing/backend_param.h"
#include "runtime/when.h"

namespace surge {
namespace {

using testing::BackendTest;
using tls::TlsContext;
using tls::TlsStream;

// A CA, a server certificate it signed for localhost and 127.0.0.1, and a self-signed one, made once.
struct Certificates {
  std::string dir;
  bool made = false;
  std::string why;

  static const Certificates& get() {
    static const Certificates certificates = make();
    return certificates;
  }

  std::string path(const char* name) const { return dir + "/" + name; }

 private:
  static Certificates make() {
    Certificates c;
    const char* base = std::getenv("TEST_TMPDIR");
    c.dir = std::string(base != nullptr ? base : "/tmp") + "/tls_test_certs";
    std::filesystem::create_directories(c.dir);
    {
      std::ofstream extensions(c.dir + "/server.ext");
      extensions << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    }
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    const std::string commands =
        "cd '" + c.dir + "' && "
        "openssl req -x509 " + key + " -keyout ca.key -out ca.pem -subj /CN=surge-test-ca -days 2 && "
        "openssl req " + key + " -keyout server.key -out server.csr -subj /CN=localhost && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
        "-extfile server.ext && "
        "openssl req -x509 " + key + " -keyout self.key -out self.pem -subj /CN=localhost -days 2 "
        "-addext subjectAltName=DNS:localhost";
    const std::string quiet = "(" + commands + ") >'" + c.dir + "/openssl.log' 2>&1";
    c.made = std::system(quiet.c_str()) == 0;
    if (!c.made) c.why = "the openssl command line failed (see " + c.dir + "/openssl.log); tools/setup.sh installs it";
    return c;
  }
};

class TlsTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(Certificates::get().made) << Certificates::get().why;
  }
};

Result<TlsContext> server_context(const char* chain = "server.pem", const char* key = "server.key") {
  const Certificates& c = Certificates::get();
  return TlsContext::server({.certificate_chain_file = c.path(chain), .private_key_file = c.path(key)});
}

Result<TlsContext> client_context() {
  return TlsContext::client({.ca_file = Certificates::get().path("ca.pem"), .alpn = {"http/1.1"}});
}

// Accepts one connection on `listener` and runs a TLS echo server on it until the client closes.
Task<Result<void>> echo_once(TcpListener& listener, TlsContext context) {
  auto accepted = co_await listener.accept();
  if (!accepted) co_return accepted.error();
  auto tls = TlsStream::accept(std::move(*accepted), context);
  if (!tls) co_return tls.error();
  const Result<void> shaken = co_await tls->handshake();
  if (!shaken) co_return shaken.error();
  std::string buffer(64 * 1024, '\0');
  for (;;) {
    const Result<std::size_t> n = co_await tls->read(MutableBuffer(buffer.data(), buffer.size()));
    if (!n) co_return n.error();
    if (*n == 0) break;
    const TransferResult sent = co_await tls->write_all(ConstBuffer(buffer.data(), *n));
    if (!sent) co_return sent.error();
  }
  const Result<void> closed = co_await tls->shutdown();
  co_return closed;
}

TEST_P(TlsTest, EchoesOneMebibyteBothWaysAtOnce) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    auto server = server_context();
    auto client = client_context();
    if (!listener || !server || !client) {
      ADD_FAILURE() << "set-up failed";
      co_return;
    }
    auto server_done = Worker::current()->spawn(echo_once(*listener, *server));
    auto tcp = co_await TcpStream::connect(*listener->local_addr());
    if (!tcp) { ADD_FAILURE() << tcp.error().message(); co_return; }
    auto tls = TlsStream::connect(std::move(*tcp), *client, "localhost");
    if (!tls) { ADD_FAILURE() << tls.error().message(); co_return; }
    const Result<void> shaken = co_await tls->handshake();
    if (!shaken) { ADD_FAILURE() << shaken.error().message(); co_return; }
    EXPECT_EQ(tls->alpn_protocol(), "http/1.1");
    EXPECT_EQ(tls->version(), "TLSv1.3");

    std::string sent(1 << 20, '\0');
    std::mt19937 random(13);
    for (char& c : sent) c = static_cast<char>(random());
    std::string received;
    // Writer and reader at once: the echo comes back while the rest is still being sent.
    auto [wrote, read] = co_await when_all(
        [](TlsStream& stream, const std::string& data) -> Task<bool> {
          const TransferResult done = co_await stream.write_all(ConstBuffer(data.data(), data.size()));
          co_return static_cast<bool>(done);
        }(*tls, sent),
        [](TlsStream& stream, std::string& into, std::size_t want) -> Task<bool> {
          std::string chunk(20000, '\0');
          while (into.size() < want) {
            const Result<std::size_t> n = co_await stream.read(MutableBuffer(chunk.data(), chunk.size()));
            if (!n || *n == 0) co_return false;
            into.append(chunk.data(), *n);
          }
          co_return true;
        }(*tls, received, sent.size()));
    EXPECT_TRUE(wrote);
    EXPECT_TRUE(read);
    EXPECT_TRUE(received == sent) << "the echo differs (" << received.size() << " bytes back)";
    // A clean close: close_notify both ways.
    EXPECT_TRUE(co_await tls->shutdown());
    char byte;
    const Result<std::size_t> end = co_await tls->read(MutableBuffer(&byte, 1));
    EXPECT_TRUE(end && *end == 0) << (end ? "data after close_notify" : end.error().message());
    const Result<void> served = co_await std::move(server_done);
    EXPECT_TRUE(served) << served.error().message();
  }()));
}

// The client's handshake against `server_chain` (with `host`): returns its error, or ok.
Task<Result<void>> client_handshake(const char* server_chain, const char* server_key, std::string host) {
  auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  auto server = server_context(server_chain, server_key);
  auto client = client_context();
  if (!listener || !server || !client) co_return Error(EINVAL, "set-up failed");
  auto server_done = Worker::current()->spawn(echo_once(*listener, *server));
  auto tcp = co_await TcpStream::connect(*listener->local_addr());
  if (!tcp) co_return tcp.error();
  auto tls = TlsStream::connect(std::move(*tcp), *client, host);
  if (!tls) co_return tls.error();
  const Result<void> shaken = co_await tls->handshake();
  if (shaken) (void)co_await tls->shutdown();
  (void)tls->transport().close();
  (void)co_await std::move(server_done);  // fails too (the client's alert), or ends at the close
  co_return shaken;
}

TEST_P(TlsTest, WrongHostNameIsRefusedWithTheReason) {
  EXPECT_TRUE(run([]() -> Task<void> {
    const Result<void> shaken = co_await client_handshake("server.pem", "server.key", "example.com");
    if (shaken) { ADD_FAILURE() << "a certificate for localhost accepted for example.com"; co_return; }
    EXPECT_EQ(shaken.error().code(), EPROTO);
    EXPECT_NE(shaken.error().message().find("hostname mismatch"), std::string::npos) << shaken.error().message();
    const Result<void> by_ip = co_await client_handshake("server.pem", "server.key", "127.0.0.1");
    EXPECT_TRUE(by_ip) << "the certificate names 127.0.0.1: " << by_ip.error().message();
  }()));
}

TEST_P(TlsTest, SelfSignedServerIsRefusedWithTheReason) {
  EXPECT_TRUE(run([]() -> Task<void> {
    const Result<void> shaken = co_await client_handshake("self.pem", "self.key", "localhost");
    if (shaken) { ADD_FAILURE() << "a self-signed certificate was trusted"; co_return; }
    EXPECT_NE(shaken.error().message().find("self-signed"), std::string::npos) << shaken.error().message();
  }()));
}

TEST_P(TlsTest, GarbageInsteadOfClientHelloIsACleanError) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    auto server = server_context();
    if (!listener || !server) { ADD_FAILURE() << "set-up failed"; co_return; }
    auto server_done = Worker::current()->spawn(echo_once(*listener, *server));
    auto tcp = co_await TcpStream::connect(*listener->local_addr());
    if (!tcp) { ADD_FAILURE() << tcp.error().message(); co_return; }
    EXPECT_TRUE(co_await tcp->write_all(ConstBuffer("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
    const Result<void> served = co_await std::move(server_done);
    if (served) { ADD_FAILURE() << "garbage taken for a ClientHello"; co_return; }
    EXPECT_EQ(served.error().code(), EPROTO) << served.error().message();
  }()));
}

TEST_P(TlsTest, CloseWithoutCloseNotifyIsTruncation) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    auto server = server_context();
    auto client = client_context();
    if (!listener || !server || !client) { ADD_FAILURE() << "set-up failed"; co_return; }
    auto server_done = Worker::current()->spawn(echo_once(*listener, *server));
    auto tcp = co_await TcpStream::connect(*listener->local_addr());
    if (!tcp) { ADD_FAILURE() << tcp.error().message(); co_return; }
    auto tls = TlsStream::connect(std::move(*tcp), *client, "localhost");
    if (!tls) { ADD_FAILURE() << tls.error().message(); co_return; }
    const Result<void> shaken = co_await tls->handshake();
    if (!shaken) { ADD_FAILURE() << shaken.error().message(); co_return; }
    EXPECT_TRUE(co_await tls->write_all(ConstBuffer("hello")));
    char echo[5];
    const Result<std::size_t> n = co_await tls->read(MutableBuffer(echo, sizeof(echo)));
    EXPECT_TRUE(n && *n == 5);
    (void)tls->transport().shutdown(Shutdown::kWrite);  // FIN, no close_notify
    const Result<void> served = co_await std::move(server_done);
    if (served) { ADD_FAILURE() << "a close without close_notify was taken for a clean end"; co_return; }
    EXPECT_EQ(served.error().code(), ECONNABORTED) << served.error().message();
  }()));
}

// A peer that connects and never speaks: a deadline around the handshake ends it (ETIMEDOUT), and the
// stream can be dropped at once.
TEST_P(TlsTest, StalledHandshakeHitsItsDeadline) {
  EXPECT_TRUE(run([]() -> Task<void> {
    auto listener = TcpListener::bind(SocketAddress::ipv4_loopback(0));
    auto server = server_context();
    if (!listener || !server) { ADD_FAILURE() << "set-up failed"; co_return; }
    auto silent = co_await TcpStream::connect(*listener->local_addr());
    auto accepted = co_await listener->accept();
    if (!silent || !accepted) { ADD_FAILURE() << "connect/accept failed"; co_return; }
    auto tls = TlsStream::accept(std::move(*accepted), *server);
    if (!tls) { ADD_FAILURE() << tls.error().message(); co_return; }
    const auto started = std::chrono::steady_clock::now();
    const Result<void> shaken = co_await timeout(std::chrono::milliseconds(200), tls->handshake());
    const auto waited = std::chrono::steady_clock::now() - started;
    if (shaken) {
      ADD_FAILURE() << "a handshake with a silent peer ended by itself";
      co_return;
    }
    EXPECT_TRUE(shaken.error().is_timed_out()) << shaken.error().message();
    EXPECT_LT(waited, std::chrono::seconds(3));
  }()));
}

TEST_P(TlsTest, ContextsRefuseBadConfiguration) {
  const Certificates& c = Certificates::get();
  auto missing = TlsContext::server({.certificate_chain_file = c.path("nope.pem"), .private_key_file = c.path("server.key")});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ENOENT);
  auto mismatched = TlsContext::server({.certificate_chain_file = c.path("server.pem"), .private_key_file = c.path("self.key")});
  ASSERT_FALSE(mismatched);
  EXPECT_NE(mismatched.error().message().find("does not match"), std::string::npos) << mismatched.error().message();
  auto not_pem = TlsContext::server({.certificate_chain_file = c.path("server.ext"), .private_key_file = c.path("server.key")});
  EXPECT_FALSE(not_pem);
  auto half = TlsContext::client({.certificate_chain_file = c.path("server.pem")});
  EXPECT_FALSE(half);
}

SURGE_INSTANTIATE_FOR_EACH_BACKEND(TlsTest);

}  // namespace
}  // namespace surge
