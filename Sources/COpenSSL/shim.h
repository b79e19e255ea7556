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
// OpenSSL's CPU probe, moved out of start-up: the static binary links with --wrap=OPENSSL_cpuid_setup (Package.swift),
// which leaves the original reachable as __real_OPENSSL_cpuid_setup. Elsewhere (the unit tests link libcrypto.so, whose
// .init probed already) the weak reference is null.
extern void __real_OPENSSL_cpuid_setup(void) __attribute__((weak));
static inline void copenssl_cpuid_setup(void) {
    if (__real_OPENSSL_cpuid_setup) __real_OPENSSL_cpuid_setup();
}
// A process that serves one request: skip parsing openssl.cnf (~1.7M instructions) and the atexit cleanup
// (~1.3M); the TLS settings the config would give are set in code instead
// (https://www.openssl.org/docs/man3.0/man3/OPENSSL_init_ssl.html).
static inline int copenssl_init_for_one_request(void) {
    return OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL);
}

// SHA-256, HMAC-SHA-256 and PBKDF2-HMAC-SHA-256 for SCRAM and JWT on libcrypto's low-level SHA-256 functions. Those
// are deprecated in OpenSSL 3.0 in favour of EVP, but they need no provider: a process's first EVP call loads the
// default provider (~4 M instructions), and PKCS5_PBKDF2_HMAC pays EVP's generic path (context copies through the
// provider) on each of its 4096 iterations. Here HMAC's inner and outer states (RFC 2104) are computed once per key,
// so an iteration is two SHA-256 block compressions (SHA-NI when the CPU has it): 0.55 ms for PostgreSQL's 4096
// iterations instead of 2.3 ms on the first call (BENCHMARKS.md).
#include <openssl/sha.h>
#include <string.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

// Not SHA256(): in OpenSSL 3.0 that one-shot goes through EVP_Q_digest, and so the provider.
static inline void copenssl_sha256(const unsigned char *data, size_t len, unsigned char out[32]) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);
}

typedef struct {
    SHA256_CTX inner, outer;
} copenssl_hmac_sha256_key;

static inline void copenssl_hmac_sha256_key_init(copenssl_hmac_sha256_key *k, const unsigned char *key, size_t len) {
    unsigned char block[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK];
    if (len > SHA256_CBLOCK) copenssl_sha256(key, len, block);
    else if (len > 0) memcpy(block, key, len);
    for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&k->inner);
    SHA256_Update(&k->inner, pad, SHA256_CBLOCK);
    for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&k->outer);
    SHA256_Update(&k->outer, pad, SHA256_CBLOCK);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
}

// HMAC(key, m1 || m2) from the key's precomputed states.
static inline void copenssl_hmac_sha256_with(const copenssl_hmac_sha256_key *k, const unsigned char *m1, size_t n1,
                                             const unsigned char *m2, size_t n2, unsigned char out[32]) {
    SHA256_CTX c = k->inner;
    if (n1 > 0) SHA256_Update(&c, m1, n1);
    if (n2 > 0) SHA256_Update(&c, m2, n2);
    SHA256_Final(out, &c);
    c = k->outer;
    SHA256_Update(&c, out, 32);
    SHA256_Final(out, &c);
    OPENSSL_cleanse(&c, sizeof c);
}

static inline void copenssl_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *message,
                                        size_t message_len, unsigned char out[32]) {
    copenssl_hmac_sha256_key k;
    copenssl_hmac_sha256_key_init(&k, key, key_len);
    copenssl_hmac_sha256_with(&k, message, message_len, NULL, 0, out);
    OPENSSL_cleanse(&k, sizeof k);
}

// PBKDF2 (RFC 8018 §5.2) with HMAC-SHA-256 and one 32-byte block, as SCRAM-SHA-256's Hi() (RFC 5802 §2.2).
static inline void copenssl_pbkdf2_hmac_sha256(const unsigned char *password, size_t password_len,
                                               const unsigned char *salt, size_t salt_len, unsigned iterations,
                                               unsigned char out[32]) {
    static const unsigned char block_index[4] = {0, 0, 0, 1};
    copenssl_hmac_sha256_key k;
    unsigned char u[32];
    copenssl_hmac_sha256_key_init(&k, password, password_len);
    copenssl_hmac_sha256_with(&k, salt, salt_len, block_index, 4, u);
    memcpy(out, u, 32);
    for (unsigned i = 1; i < iterations; i++) {
        copenssl_hmac_sha256_with(&k, u, 32, NULL, 0, u);
        for (int j = 0; j < 32; j++) out[j] ^= u[j];
    }
    OPENSSL_cleanse(&k, sizeof k);
    OPENSSL_cleanse(u, sizeof u);
}

#pragma GCC diagnostic pop

// The kernel's CSPRNG (which also seeds OpenSSL's): all of `len` bytes, or -1. Swift's Glibc module lacks getrandom.
#include <sys/random.h>
#include <errno.h>
static inline int copenssl_getrandom(unsigned char *buffer, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(buffer + done, len - done, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        done += (size_t)n;
    }
    return 0;
}
