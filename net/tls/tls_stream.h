// tls_stream.h: TlsStream, TLS over a TcpStream, with OpenSSL driven through memory BIOs: every encrypted
// byte still moves through the stream's own recv/send operations (io_uring SQEs or epoll), OpenSSL only
// encrypts and decrypts in memory.
//
//   auto context = surge::tls::TlsContext::client({.ca_file = "ca.pem"});
//   auto tcp = co_await surge::TcpStream::connect("127.0.0.1:8443");
//   auto tls = surge::tls::TlsStream::connect(std::move(*tcp), *context, "example.com");  // SNI + name check
//   if (auto done = co_await tls->handshake(); !done) co_return done.error();
//   // e.g. "tls handshake: certificate verify failed: hostname mismatch: Protocol error"
//   (void)co_await tls->write_all(request);
//   auto n = co_await tls->read(buffer);     // 0 only after the peer's close_notify
//   (void)co_await tls->shutdown();          // sends close_notify
//
// End of stream: read() returns 0 only after the peer's close_notify. A peer that closes the TCP
// connection without it gets ECONNABORTED ("tls read: the peer closed without close_notify"): the data
// may have been cut short by an attacker, as RFC 8446 6.1 warns, so it is not a clean end.
//
// Concurrency: one read() and one write_all() may be in flight at once (full duplex, as for TcpStream);
// their ciphertext goes out in order through one send lock, so memory stays bounded by one 16 KiB record
// per writer. Awaitables are Tasks: awaited right away, on the stream's worker. Cancelling a task that
// awaits one (or surge::timeout around it) cancels the socket operation it is waiting for; the TLS session
// is then in an unknown state and the stream must be closed (a cancelled write may have sent part of a
// record).
// Errors: EPROTO with what OpenSSL said (a verification failure names its reason: "hostname mismatch",
// "certificate has expired", "self-signed certificate"), ECONNRESET when the peer closes during the
// handshake, the socket's own errors otherwise.
#ifndef SURGE_NET_TLS_TLS_STREAM_H_
#define SURGE_NET_TLS_TLS_STREAM_H_

#include <cstddef>
#include <memory>
#include <string_view>

#include "net/buffer.h"
#include "net/tcp_stream.h"
#include "net/tls/tls_context.h"
#include "runtime/result.h"
#include "runtime/task.h"

namespace surge::tls {

class TlsStream {
 public:
  // The server side of `stream` (the handshake is not done yet: await handshake()). `context` must be a
  // server context; the stream keeps a copy of it.
  static Result<TlsStream> accept(TcpStream stream, const TlsContext& context);
  // The client side: sends `host_name` as SNI (unless it is an IP address) and, if the context verifies
  // peers, checks the server's certificate against it.
  static Result<TlsStream> connect(TcpStream stream, const TlsContext& context, std::string_view host_name);

  TlsStream(TlsStream&&) noexcept;
  TlsStream& operator=(TlsStream&&) noexcept;
  ~TlsStream();

  Task<Result<void>> handshake();
  // Up to buffer.size plaintext bytes (at least 1), or 0 after the peer's close_notify.
  Task<Result<std::size_t>> read(MutableBuffer buffer);
  // Encrypts and sends all of `buffer` (in records of up to 16 KiB): TransferResult says how many
  // plaintext bytes were handed to the socket, also when it failed.
  Task<TransferResult> write_all(ConstBuffer buffer);
  // Sends close_notify, then shuts the TCP stream down for writing. Does not wait for the peer's.
  Task<Result<void>> shutdown();

  // After the handshake: the protocol ALPN agreed on ("" if none), the TLS version ("TLSv1.3"), the cipher.
  std::string_view alpn_protocol() const noexcept;
  std::string_view version() const noexcept;
  std::string_view cipher() const noexcept;
  TcpStream& transport() noexcept;

  struct State;  // the SSL, its BIOs and buffers, the transport (tls_stream.cc)

 private:
  explicit TlsStream(std::unique_ptr<State> state) noexcept;
  static Result<TlsStream> make(TcpStream stream, const TlsContext& context, bool server, std::string_view host);

  std::unique_ptr<State> state_;  // stable: OpenSSL and the awaiting tasks point into it
};

}  // namespace surge::tls

#endif  // SURGE_NET_TLS_TLS_STREAM_H_
