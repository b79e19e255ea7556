#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>

// Macros that Swift cannot import as functions.
static inline long copenssl_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long copenssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
// OpenSSL 3 reports a peer that closes without close_notify as an error; HTTPClient decides truncation from
// the HTTP framing instead (https://www.openssl.org/docs/man3.0/man3/SSL_CTX_set_options.html).
static inline void copenssl_ignore_unexpected_eof(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
}
// The key-share groups a client offers first: PostgreSQL 15 servers do ECDHE on P-256 only, and OpenSSL 3.0's
// default first share (X25519) would cost a HelloRetryRequest round trip
// (https://www.openssl.org/docs/man3.0/man3/SSL_CTX_set1_groups_list.html).
static inline long copenssl_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return SSL_CTX_set1_groups_list(ctx, list);
}
// A process that serves one request: skip parsing openssl.cnf (~1.7M instructions) and the atexit cleanup
// (~1.3M); the TLS settings the config would give are set in code instead
// (https://www.openssl.org/docs/man3.0/man3/OPENSSL_init_ssl.html).
static inline int copenssl_init_for_one_request(void) {
    return OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL);
}
