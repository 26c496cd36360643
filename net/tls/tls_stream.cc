#include "net/tls/tls_stream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "sync/mutex.h"

namespace surge::tls {
namespace {

constexpr std::size_t kRecordBytes = 16 * 1024;     // TLS's largest plaintext record
constexpr std::size_t kCipherBytes = 17 * 1024;     // a record with its header, padding and tag

// surge::Error keeps a static text; OpenSSL's reasons come from its own static tables (a finite set),
// so "tls <step>: <reason>" texts are interned once each and live for the process.
const char* intern(std::string text) {
  static std::mutex lock;
  static std::set<std::string>* texts = new std::set<std::string>();
  std::lock_guard<std::mutex> guard(lock);
  return texts->insert(std::move(text)).first->c_str();
}

// The error for a failed SSL call during `step` ("tls handshake", "tls read", ...).
Error ssl_error(SSL* ssl, const char* step) {
  if (step[4] == 'h') {  // "tls handshake": a verification failure says why
    const long verified = SSL_get_verify_result(ssl);
    if (verified != X509_V_OK) {
      const std::string reason = X509_verify_cert_error_string(verified);
      ERR_clear_error();
      return Error(EPROTO, intern(std::string(step) + ": certificate verify failed: " + reason));
    }
  }
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  if (reason == nullptr) return Error(EPROTO, intern(std::string(step) + ": TLS protocol error"));
  return Error(EPROTO, intern(std::string(step) + ": " + reason));
}

bool is_ip_address(const std::string& host) {
  unsigned char address[16];
  return inet_pton(AF_INET, host.c_str(), address) == 1 || inet_pton(AF_INET6, host.c_str(), address) == 1;
}

}  // namespace

struct TlsStream::State {
  State(TcpStream tcp, TlsContext tls) : stream(std::move(tcp)), context(std::move(tls)) {}
  ~State() { SSL_free(ssl); }  // frees both BIOs

  TcpStream stream;
  TlsContext context;  // kept: the SSL refers to the SSL_CTX and its callbacks' data
  SSL* ssl = nullptr;
  BIO* incoming = nullptr;  // ciphertext received: we write it, OpenSSL reads it
  BIO* outgoing = nullptr;  // ciphertext to send: OpenSSL writes it, we read it out
  Mutex send_lock;          // one flush at a time, so that records leave whole and in order
  std::unique_ptr<char[]> receive_buffer{new char[kCipherBytes]};
  std::unique_ptr<char[]> send_buffer{new char[kCipherBytes]};
  bool handshake_done = false;
};

namespace {

// Sends what OpenSSL has produced. Holds the send lock while it writes, so another writer's records wait
// (and its memory stays one record), and nothing is sent twice or out of order.
Task<Result<void>> flush(TlsStream::State& state) {
  auto guard = co_await state.send_lock.lock();
  if (!guard) co_return guard.error();
  while (BIO_ctrl_pending(state.outgoing) > 0) {
    const int taken = BIO_read(state.outgoing, state.send_buffer.get(), static_cast<int>(kCipherBytes));
    if (taken <= 0) break;
    const TransferResult sent =
        co_await state.stream.write_all(ConstBuffer(state.send_buffer.get(), static_cast<std::size_t>(taken)));
    if (!sent) co_return sent.error();
  }
  co_return ok();
}

// Receives ciphertext into OpenSSL's input: true, or false at the peer's end of stream.
Task<Result<bool>> fill(TlsStream::State& state) {
  const Result<std::size_t> received = co_await state.stream.read(MutableBuffer(state.receive_buffer.get(), kCipherBytes));
  if (!received) co_return received.error();
  if (*received == 0) co_return false;
  BIO_write(state.incoming, state.receive_buffer.get(), static_cast<int>(*received));
  co_return true;
}

}  // namespace

TlsStream::TlsStream(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
TlsStream::TlsStream(TlsStream&&) noexcept = default;
TlsStream& TlsStream::operator=(TlsStream&&) noexcept = default;
TlsStream::~TlsStream() = default;

Result<TlsStream> TlsStream::make(TcpStream stream, const TlsContext& context, bool server, std::string_view host) {
  if (context.is_server() != server) {
    return Error(EINVAL, server ? "tls accept: needs a server context" : "tls connect: needs a client context");
  }
  auto state = std::make_unique<State>(std::move(stream), context);
  state->ssl = SSL_new(context.native_handle());
  if (state->ssl == nullptr) return Error(ENOMEM, "tls: SSL_new");
  state->incoming = BIO_new(BIO_s_mem());
  state->outgoing = BIO_new(BIO_s_mem());
  if (state->incoming == nullptr || state->outgoing == nullptr) {
    BIO_free(state->incoming);
    BIO_free(state->outgoing);
    return Error(ENOMEM, "tls: BIO_new");
  }
  // An empty memory BIO means "no data yet" (retry), not end of file.
  BIO_set_mem_eof_return(state->incoming, -1);
  SSL_set_bio(state->ssl, state->incoming, state->outgoing);
  if (server) {
    SSL_set_accept_state(state->ssl);
  } else {
    SSL_set_connect_state(state->ssl);
    const std::string name(host);
    if (!name.empty()) {
      const bool ip = is_ip_address(name);
      if (!ip && SSL_set_tlsext_host_name(state->ssl, name.c_str()) != 1) {
        ERR_clear_error();
        return Error(EINVAL, "tls connect: bad host name for SNI");
      }
      if (context.verifies_peer()) {
        const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(state->ssl), name.c_str())
                           : SSL_set1_host(state->ssl, name.c_str());
        if (set != 1) {
          ERR_clear_error();
          return Error(EINVAL, "tls connect: bad host name to verify");
        }
      }
    } else if (context.verifies_peer()) {
      return Error(EINVAL, "tls connect: a verifying client needs the server's host name");
    }
  }
  return TlsStream(std::move(state));
}

Result<TlsStream> TlsStream::accept(TcpStream stream, const TlsContext& context) {
  return make(std::move(stream), context, /*server=*/true, {});
}

Result<TlsStream> TlsStream::connect(TcpStream stream, const TlsContext& context, std::string_view host_name) {
  return make(std::move(stream), context, /*server=*/false, host_name);
}

Task<Result<void>> TlsStream::handshake() {
  State& state = *state_;
  for (;;) {
    ERR_clear_error();
    const int done = SSL_do_handshake(state.ssl);
    const int reason = done == 1 ? SSL_ERROR_NONE : SSL_get_error(state.ssl, done);
    Error failure(0, "");
    if (reason != SSL_ERROR_NONE && reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE) {
      failure = ssl_error(state.ssl, "tls handshake");
    }
    // Whatever OpenSSL produced goes out first: the next flight, or the alert that tells the peer why.
    const Result<void> flushed = co_await flush(state);
    if (failure.code() != 0) co_return failure;
    if (!flushed) co_return flushed.error();
    if (done == 1) {
      state.handshake_done = true;
      co_return ok();
    }
    if (reason == SSL_ERROR_WANT_READ) {
      const Result<bool> filled = co_await fill(state);
      if (!filled) co_return filled.error();
      if (!*filled) co_return Error(ECONNRESET, "tls handshake: the peer closed the connection");
    }
  }
}

Task<Result<std::size_t>> TlsStream::read(MutableBuffer buffer) {
  State& state = *state_;
  if (buffer.size == 0) co_return std::size_t{0};
  for (;;) {
    ERR_clear_error();
    std::size_t got = 0;
    const int done = SSL_read_ex(state.ssl, buffer.data, buffer.size, &got);
    if (done == 1) co_return got;
    const int reason = SSL_get_error(state.ssl, done);
    if (reason == SSL_ERROR_ZERO_RETURN) co_return std::size_t{0};  // close_notify
    if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE) {
      const Error failure = ssl_error(state.ssl, "tls read");
      const Result<void> flushed = co_await flush(state);  // an alert, if OpenSSL made one
      (void)flushed;
      co_return failure;
    }
    // TLS 1.3 sends messages of its own while reading (session tickets, key update replies).
    const Result<void> flushed = co_await flush(state);
    if (!flushed) co_return flushed.error();
    if (reason == SSL_ERROR_WANT_READ) {
      const Result<bool> filled = co_await fill(state);
      if (!filled) co_return filled.error();
      if (!*filled) co_return Error(ECONNABORTED, "tls read: the peer closed without close_notify");
    }
  }
}

Task<TransferResult> TlsStream::write_all(ConstBuffer buffer) {
  State& state = *state_;
  const auto* data = static_cast<const char*>(buffer.data);
  std::size_t sent = 0;
  while (sent < buffer.size) {
    const std::size_t chunk = std::min(buffer.size - sent, kRecordBytes);
    ERR_clear_error();
    std::size_t written = 0;
    const int done = SSL_write_ex(state.ssl, data + sent, chunk, &written);
    if (done != 1) {
      const int reason = SSL_get_error(state.ssl, done);
      if (reason != SSL_ERROR_WANT_WRITE && reason != SSL_ERROR_WANT_READ) {
        co_return TransferResult(ssl_error(state.ssl, "tls write"), sent);
      }
      // A memory BIO never refuses output; WANT_READ means a handshake message must arrive first.
      if (reason == SSL_ERROR_WANT_READ) {
        const Result<bool> filled = co_await fill(state);
        if (!filled) co_return TransferResult(filled.error(), sent);
        if (!*filled) co_return TransferResult(Error(ECONNRESET, "tls write: the peer closed the connection"), sent);
      }
    }
    const Result<void> flushed = co_await flush(state);
    if (!flushed) co_return TransferResult(flushed.error(), sent);
    sent += written;
  }
  co_return TransferResult(sent);
}

Task<Result<void>> TlsStream::shutdown() {
  State& state = *state_;
  ERR_clear_error();
  (void)SSL_shutdown(state.ssl);  // queues close_notify; the peer's is not waited for
  ERR_clear_error();
  const Result<void> flushed = co_await flush(state);
  if (!flushed) co_return flushed.error();
  co_return state.stream.shutdown(Shutdown::kWrite);
}

std::string_view TlsStream::alpn_protocol() const noexcept {
  const unsigned char* protocol = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(state_->ssl, &protocol, &length);
  return protocol == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(protocol), length);
}

std::string_view TlsStream::version() const noexcept { return SSL_get_version(state_->ssl); }

std::string_view TlsStream::cipher() const noexcept {
  const char* name = SSL_get_cipher_name(state_->ssl);
  return name == nullptr ? std::string_view() : std::string_view(name);
}

TcpStream& TlsStream::transport() noexcept { return state_->stream; }

}  // namespace surge::tls
