import COpenSSL

/// OpenSSL initialised for a process that lives for one request. Every path into libcrypto or libssl reads
/// `ready` first, because the first OpenSSL call of any kind fixes the initialisation options for good.
enum OpenSSLSetup {
    /// True once OpenSSL is initialised without openssl.cnf and without its exit-time cleanup.
    static let ready: Bool = copenssl_init_for_one_request() == 1
}
