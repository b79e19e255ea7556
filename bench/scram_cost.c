/* What our side of one SCRAM-SHA-256 login costs in a fresh process, OpenSSL 3's generic way against the way
 * Sources/COpenSSL/shim.h does it. Each measurement runs in a process of its own (fork), so a "first call" pays
 * what a function process pays: the provider and DRBG set-up come with the first EVP call and the first RAND_bytes.
 *
 *   gcc -O2 -static -I Sources/COpenSSL -o scram_cost bench/scram_cost.c -lcrypto -lpthread && ./scram_cost
 *
 * Prints one line per step: median microseconds over 200 processes. bench/pgbouncer.sh runs it.
 */
#include "shim.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char password[] = "9eaf76139d26e34aeda44788273b6423";
static const unsigned char salt[16] = "0123456789abcdef";

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* The client's keys from a salted password, as SCRAMSHA256.clientFinalMessage computes them. */
static void keys_evp(const unsigned char salted[32]) {
    unsigned char client[32], server[32], stored[32];
    unsigned int n;
    HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, client, &n);
    HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10, server, &n);
    EVP_Digest(client, 32, stored, &n, EVP_sha256(), NULL);
}

static void keys_shim(const unsigned char salted[32]) {
    unsigned char client[32], server[32], stored[32];
    copenssl_hmac_sha256(salted, 32, (const unsigned char *)"Client Key", 10, client);
    copenssl_hmac_sha256(salted, 32, (const unsigned char *)"Server Key", 10, server);
    copenssl_sha256(client, 32, stored);
}

enum step { NONCE_RAND, NONCE_GETRANDOM, PBKDF2_EVP, PBKDF2_EVP_SECOND, PBKDF2_SHIM, LOGIN_EVP, LOGIN_SHIM, LOGIN_KEYS };
static const char *names[] = {
    "nonce: RAND_bytes (first call: DRBG set-up)",
    "nonce: getrandom",
    "PBKDF2, 4096 iterations: PKCS5_PBKDF2_HMAC, first EVP call of the process",
    "PBKDF2, 4096 iterations: PKCS5_PBKDF2_HMAC, a later call",
    "PBKDF2, 4096 iterations: precomputed HMAC states on low-level SHA-256 (shim.h)",
    "whole client side (nonce, PBKDF2, keys, signature): OpenSSL's generic way, as before",
    "whole client side: shim.h (no provider, no DRBG)",
    "whole client side with the role's keys given (scram_client_key, scram_server_key): no PBKDF2",
};

static double measure(enum step step) {
    unsigned char nonce[18], salted[32], signature[32];
    double start, end;
    if (step == PBKDF2_EVP_SECOND)
        PKCS5_PBKDF2_HMAC(password, sizeof password - 1, salt, sizeof salt, 4096, EVP_sha256(), 32, salted);
    start = now_us();
    switch (step) {
    case NONCE_RAND: RAND_bytes(nonce, sizeof nonce); break;
    case NONCE_GETRANDOM: copenssl_getrandom(nonce, sizeof nonce); break;
    case PBKDF2_EVP:
    case PBKDF2_EVP_SECOND:
        PKCS5_PBKDF2_HMAC(password, sizeof password - 1, salt, sizeof salt, 4096, EVP_sha256(), 32, salted);
        break;
    case PBKDF2_SHIM:
        copenssl_pbkdf2_hmac_sha256((const unsigned char *)password, sizeof password - 1, salt, sizeof salt, 4096,
                                    salted);
        break;
    case LOGIN_EVP:
        RAND_bytes(nonce, sizeof nonce);
        PKCS5_PBKDF2_HMAC(password, sizeof password - 1, salt, sizeof salt, 4096, EVP_sha256(), 32, salted);
        keys_evp(salted);
        HMAC(EVP_sha256(), salted, 32, nonce, sizeof nonce, signature, NULL);
        break;
    case LOGIN_SHIM:
        copenssl_getrandom(nonce, sizeof nonce);
        copenssl_pbkdf2_hmac_sha256((const unsigned char *)password, sizeof password - 1, salt, sizeof salt, 4096,
                                    salted);
        keys_shim(salted);
        copenssl_hmac_sha256(salted, 32, nonce, sizeof nonce, signature);
        break;
    case LOGIN_KEYS: {
        /* StoredKey = H(ClientKey) and the two signatures, as with real keys (the 32-character password stands in
         * for the client key and the salt for the server key: the same hashing work). */
        unsigned char stored[32];
        copenssl_getrandom(nonce, sizeof nonce);
        copenssl_sha256((const unsigned char *)password, 32, stored);
        copenssl_hmac_sha256(stored, 32, nonce, sizeof nonce, signature);
        copenssl_hmac_sha256((const unsigned char *)salt, sizeof salt, nonce, sizeof nonce, signature);
        break;
    }
    }
    end = now_us();
    return end - start;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    enum { RUNS = 200 };
    for (int step = NONCE_RAND; step <= LOGIN_KEYS; step++) {
        double times[RUNS];
        for (int i = 0; i < RUNS; i++) {
            int pipefd[2];
            if (pipe(pipefd) != 0) return 1;
            pid_t pid = fork();
            if (pid == 0) {
                double t = measure(step);
                if (write(pipefd[1], &t, sizeof t) != sizeof t) _exit(1);
                _exit(0);
            }
            close(pipefd[1]);
            if (read(pipefd[0], &times[i], sizeof times[i]) != sizeof times[i]) return 1;
            close(pipefd[0]);
            waitpid(pid, NULL, 0);
        }
        qsort(times, RUNS, sizeof times[0], compare);
        printf("%.0f\t%s\n", times[RUNS / 2], names[step]);
    }
    return 0;
}
