// tls_context.h: TlsContext, the configuration TLS streams are made from (OpenSSL 3's SSL_CTX): the
// server's certificate chain and key, the client's trust anchors and peer verification, ALPN.
//
//   auto server = surge::tls::TlsContext::server({.certificate_chain_file = "cert.pem",
//                                                 .private_key_file = "key.pem"});
//   if (!server) return fail(server.error());      // "tls: cert.pem: no such file" and the like
//   auto client = surge::tls::TlsContext::client({.ca_file = "ca.pem"});   // verifies the peer by default
//
// Why OpenSSL: TLS is not code to write ourselves; OpenSSL 3 is what Debian ships and what nginx uses, so
// the comparison runs the same ciphers. Only its record layer and handshake are used, through memory BIOs
// (tls_stream.h): it never touches a socket.
//
// Threads: a context is immutable once made and may be shared by streams on every worker (OpenSSL's
// SSL_CTX is thread-safe for that use); copies share one SSL_CTX.
#ifndef SURGE_NET_TLS_TLS_CONTEXT_H_
#define SURGE_NET_TLS_TLS_CONTEXT_H_

#include <memory>
#include <string>
#include <vector>

#include "runtime/result.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace surge::tls {

struct ServerConfig {
  std::string certificate_chain_file;  // PEM: the leaf first, then intermediates
  std::string private_key_file;        // PEM, unencrypted
  // Offered in ALPN order of preference; a client asking for none of them still connects (no ALPN).
  std::vector<std::string> alpn = {"http/1.1"};
};

struct ClientConfig {
  // Verification of the server's chain and host name: on unless turned off here, explicitly.
  bool verify_peer = true;
  std::string ca_file;  // PEM trust anchors; empty: the system's (Debian's /etc/ssl/certs)
  // Mutual TLS: the client's own chain and key, both or neither.
  std::string certificate_chain_file;
  std::string private_key_file;
  std::vector<std::string> alpn;  // empty: no ALPN extension
};

class TlsContext {
 public:
  // Errors carry EINVAL (bad configuration) or ENOENT (a file missing) and say what failed.
  static Result<TlsContext> server(const ServerConfig& config);
  static Result<TlsContext> client(const ClientConfig& config);

  bool is_server() const noexcept { return is_server_; }
  bool verifies_peer() const noexcept { return verify_peer_; }
  ssl_ctx_st* native_handle() const noexcept { return state_->context; }

 private:
  // The SSL_CTX and what its callbacks point at, freed together with the last copy. A TlsStream keeps a
  // copy, so that nothing its SSL refers to goes before it.
  struct State {
    ssl_ctx_st* context = nullptr;
    std::string alpn_wire;  // the server's ALPN list, read by its selection callback
    ~State();
  };
  TlsContext(ssl_ctx_st* context, bool is_server, bool verify_peer);

  std::shared_ptr<State> state_;
  bool is_server_ = false;
  bool verify_peer_ = false;
};

}  // namespace surge::tls

#endif  // SURGE_NET_TLS_TLS_CONTEXT_H_
