#include "net/tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace surge::tls {
namespace {

// ALPN's wire form: each protocol name prefixed by its length.
std::string alpn_wire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& protocol : protocols) {
    if (protocol.empty() || protocol.size() > 255) continue;
    wire.push_back(static_cast<char>(protocol.size()));
    wire += protocol;
  }
  return wire;
}

// The server's ALPN choice: the first of its own protocols the client offers (server preference).
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* offered,
                unsigned int offered_length, void* argument) {
  const std::string& ours = *static_cast<const std::string*>(argument);
  for (std::size_t i = 0; i < ours.size(); i += 1 + static_cast<unsigned char>(ours[i])) {
    const unsigned char length = static_cast<unsigned char>(ours[i]);
    for (unsigned int j = 0; j < offered_length; j += 1u + offered[j]) {
      if (offered[j] == length && j + 1 + length <= offered_length &&
          ours.compare(i + 1, length, reinterpret_cast<const char*>(offered + j + 1), length) == 0) {
        *out = offered + j + 1;
        *out_length = length;
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
}

bool readable(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

}  // namespace

TlsContext::State::~State() { SSL_CTX_free(context); }

TlsContext::TlsContext(ssl_ctx_st* context, bool is_server, bool verify_peer)
    : state_(std::make_shared<State>()), is_server_(is_server), verify_peer_(verify_peer) {
  state_->context = context;
}

Result<TlsContext> TlsContext::server(const ServerConfig& config) {
  if (config.certificate_chain_file.empty() || config.private_key_file.empty()) {
    return Error(EINVAL, "tls: a server needs certificate_chain_file and private_key_file");
  }
  if (!readable(config.certificate_chain_file)) return Error(ENOENT, "tls: cannot read certificate_chain_file");
  if (!readable(config.private_key_file)) return Error(ENOENT, "tls: cannot read private_key_file");
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (raw == nullptr) return Error(ENOMEM, "tls: SSL_CTX_new");
  TlsContext context(raw, /*is_server=*/true, /*verify_peer=*/false);
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  // Buffers are released between records: an idle connection holds no 16 KiB record buffers.
  SSL_CTX_set_mode(raw, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(raw, config.certificate_chain_file.c_str()) != 1) {
    ERR_clear_error();
    return Error(EINVAL, "tls: certificate_chain_file is not a PEM certificate chain");
  }
  if (SSL_CTX_use_PrivateKey_file(raw, config.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL checks the key against the certificate as it loads it.
    const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    ERR_clear_error();
    if (mismatch) return Error(EINVAL, "tls: the private key does not match the certificate");
    return Error(EINVAL, "tls: private_key_file is not an unencrypted PEM private key");
  }
  if (SSL_CTX_check_private_key(raw) != 1) {
    ERR_clear_error();
    return Error(EINVAL, "tls: the private key does not match the certificate");
  }
  if (!config.alpn.empty()) {
    context.state_->alpn_wire = alpn_wire(config.alpn);
    SSL_CTX_set_alpn_select_cb(raw, select_alpn, &context.state_->alpn_wire);
  }
  return context;
}

Result<TlsContext> TlsContext::client(const ClientConfig& config) {
  if (config.certificate_chain_file.empty() != config.private_key_file.empty()) {
    return Error(EINVAL, "tls: a client certificate needs both certificate_chain_file and private_key_file");
  }
  if (!config.ca_file.empty() && !readable(config.ca_file)) return Error(ENOENT, "tls: cannot read ca_file");
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (raw == nullptr) return Error(ENOMEM, "tls: SSL_CTX_new");
  TlsContext context(raw, /*is_server=*/false, config.verify_peer);
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_mode(raw, SSL_MODE_RELEASE_BUFFERS);
  if (config.verify_peer) {
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
    const int loaded = config.ca_file.empty() ? SSL_CTX_set_default_verify_paths(raw)
                                              : SSL_CTX_load_verify_locations(raw, config.ca_file.c_str(), nullptr);
    if (loaded != 1) {
      ERR_clear_error();
      return Error(EINVAL, "tls: cannot load the trust anchors (ca_file)");
    }
  } else {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
  }
  if (!config.certificate_chain_file.empty()) {
    if (!readable(config.certificate_chain_file)) return Error(ENOENT, "tls: cannot read certificate_chain_file");
    if (SSL_CTX_use_certificate_chain_file(raw, config.certificate_chain_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(raw, config.private_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(raw) != 1) {
      ERR_clear_error();
      return Error(EINVAL, "tls: the client certificate or key cannot be used");
    }
  }
  if (!config.alpn.empty()) {
    const std::string wire = alpn_wire(config.alpn);
    if (SSL_CTX_set_alpn_protos(raw, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0) {
      ERR_clear_error();
      return Error(EINVAL, "tls: bad ALPN protocol list");
    }
  }
  return context;
}

}  // namespace surge::tls
