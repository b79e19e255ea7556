import COpenSSL

/// OpenSSL initialised for a process that lives for one request. Every path into libcrypto or libssl reads
/// `ready` (or, for the low-level SHA-256 alone, `cpu`) first, because the first OpenSSL call of any kind fixes the
/// initialisation options for good.
enum OpenSSLSetup {
    /// True once OpenSSL is initialised without openssl.cnf and without its exit-time cleanup.
    static let ready: Bool = cpu && copenssl_init_for_one_request() == 1

    /// True once OpenSSL knows the CPU's features (AES-NI, SHA-NI, AVX2…), probed here instead of at start-up.
    static let cpu: Bool = {
        copenssl_cpuid_setup()
        return true
    }()
}

/// Replaces OpenSSL's CPU probe wherever it is called, its start-up call in `.init` included (linked with `--wrap`,
/// see Package.swift): `OpenSSLSetup.cpu` runs the real one once, before anything of OpenSSL is used, so the calls
/// OpenSSL makes itself later find the features known already.
@_cdecl("__wrap_OPENSSL_cpuid_setup")
func deferOpenSSLCPUProbe() {}
