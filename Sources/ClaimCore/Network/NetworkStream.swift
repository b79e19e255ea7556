import COpenSSL
import Glibc

/// Why a network operation failed. `kind` is for branching, `detail` for the log line.
struct NetworkFailure: Error, CustomStringConvertible {
    enum Kind: String {
        case dns
        /// No TCP connection: refused, unreachable.
        case connect
        /// CA certificates could not be loaded, or OpenSSL could not set up a context.
        case tlsSetup = "tls_setup"
        /// Handshake failed: untrusted certificate, wrong host name, protocol error.
        case tls
        /// The connection was reset or closed.
        case reset
        /// The deadline passed.
        case timeout
    }

    var kind: Kind
    var detail: String

    init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    var description: String { "\(kind.rawValue): \(detail)" }
}

/// One CLOCK_MONOTONIC deadline for the whole exchange.
public struct Deadline: Sendable {
    let budgetMs: Int
    let end: Int64

    init(ms: Int) {
        // At most ~31 years, so that the nanoseconds below cannot overflow whatever a caller passes.
        budgetMs = min(max(ms, 0), 1_000_000_000_000)
        end = Deadline.now() + Int64(budgetMs) * 1_000_000
    }

    /// `ms` from now, or sooner when `answerBy` (an invocation's answer-by time) comes first.
    init(ms: Int, answerBy: Deadline?) {
        self.init(ms: answerBy.map { min(ms, Int($0.remainingMs)) } ?? ms)
    }

    /// `configured` ms, or fewer when this deadline comes sooner: one wait gets at most three quarters of the time
    /// left, so what follows it (a rollback, the audit event, the answer) still fits before the deadline.
    func capping(_ configured: Int) -> Int {
        min(configured, Int(remainingMs) * 3 / 4)
    }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Milliseconds left, rounded up so that poll does not spin; 0 once passed.
    var remainingMs: Int32 {
        let left = end - Deadline.now()
        return left <= 0 ? 0 : Int32(min((left + 999_999) / 1_000_000, Int64(Int32.max)))
    }
}

/// A TCP connection's byte stream, plain or TLS over OpenSSL, on a non-blocking socket: every wait is a `poll`
/// bounded by `deadline`. Shared by `HTTPClient` and `PostgresConnection`. It owns its socket and its TLS session and
/// frees both when the last reference goes (GRDB's handle owners), so no path can leak or double-close them.
final class NetworkStream {
    private let fd: Int32
    private var ssl: OpaquePointer?
    var deadline: Deadline

    /// Hashed CA directory used when no CA file or directory is given. Certificates in it are read lazily, by
    /// issuer hash, during verification; SSL_CTX_set_default_verify_paths would parse the whole bundle (~45 ms per
    /// process).
    static let systemCertDir = "/etc/ssl/certs"

    private init(fd: Int32, deadline: Deadline) {
        self.fd = fd
        self.deadline = deadline
    }

    /// Frees the TLS session and closes the socket (without a TLS close_notify: the peer learns from the FIN).
    deinit {
        SSL_free(ssl)
        Glibc.close(fd)
    }

    /// True when the peer has sent nothing and not closed the connection since the last exchange, so a kept
    /// connection may carry the next one. Anything readable between exchanges (a FIN, a server's FATAL message, a TLS
    /// close_notify) means the peer is done with it. One `poll` with no wait.
    var isQuiet: Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 0
    }

    // MARK: - Connecting

    /// Resolves `host` and connects to the first address that answers, within the deadline. Sets SIGPIPE to
    /// ignored: OpenSSL writes with write(2).
    static func connect(host: String, port: Int, deadline: Deadline) throws(NetworkFailure) -> NetworkStream {
        signal(SIGPIPE, SIG_IGN)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let list else {
            let reason = rc == EAI_SYSTEM ? errnoText() : String(cString: gai_strerror(rc))
            throw NetworkFailure(.dns, "\(host): \(reason)")
        }
        defer { freeaddrinfo(list) }
        var failure = NetworkFailure(.connect, "\(host): no address")
        var next: UnsafeMutablePointer<addrinfo>? = list
        while let info = next?.pointee {
            next = info.ai_next
            do throws(NetworkFailure) {
                let fd = try connect(info, label: "\(host):\(port)", deadline: deadline)
                return NetworkStream(fd: fd, deadline: deadline)
            } catch {
                if error.kind == .timeout { throw error }
                failure = error  // e.g. ::1 refused, then 127.0.0.1 answers
            }
        }
        throw failure
    }

    private static func connect(_ info: addrinfo, label: String, deadline: Deadline) throws(NetworkFailure) -> Int32 {
        let flags = Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        let fd = socket(info.ai_family, info.ai_socktype | flags, info.ai_protocol)
        guard fd >= 0 else { throw NetworkFailure(.connect, "socket: \(errnoText())") }
        var connected = false
        defer { if !connected { Glibc.close(fd) } }
        if Glibc.connect(fd, info.ai_addr, info.ai_addrlen) != 0 {
            // After EINTR the connection still completes asynchronously, like EINPROGRESS.
            guard errno == EINPROGRESS || errno == EINTR else {
                throw NetworkFailure(.connect, "\(label): \(errnoText())")
            }
            try wait(fd, Int16(POLLOUT), deadline, "connecting to \(label)")
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else {
                throw NetworkFailure(.connect, "\(label): \(errnoText(error == 0 ? errno : error))")
            }
        }
        // Requests are written whole, then answered: Nagle's algorithm would hold a second small write (the TLS
        // Finished, then PostgreSQL's start-up message) until the peer's delayed ACK, ~40 ms.
        var on: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        connected = true
        return fd
    }

    // MARK: - TLS

    /// A client context (TLS ≥ 1.2). With `verify`, it trusts `caFile` / `caDir` when either is set, else the
    /// system's hashed CA directory; without, it accepts any certificate (PostgreSQL's sslmode=require).
    private static func tlsContext(caFile: String?, caDir: String?, verify: Bool, groups: String?)
        throws(NetworkFailure) -> OpaquePointer
    {
        _ = OpenSSLSetup.ready
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw NetworkFailure(.tlsSetup, "SSL_CTX_new: \(openSSLErrorText())")
        }
        _ = copenssl_set_min_proto_version(context, TLS1_2_VERSION)
        // What Debian's openssl.cnf would set, which is not loaded (see OpenSSLSetup): 112-bit security at least.
        SSL_CTX_set_security_level(context, 2)
        if let groups, copenssl_set1_groups_list(context, groups) != 1 {
            let text = openSSLErrorText()
            SSL_CTX_free(context)
            throw NetworkFailure(.tlsSetup, "groups \(groups): \(text)")
        }
        SSL_CTX_set_verify(context, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
        copenssl_ignore_unexpected_eof(context)
        guard verify else { return context }
        let directory = caFile == nil && caDir == nil ? systemCertDir : caDir
        guard SSL_CTX_load_verify_locations(context, caFile, directory) == 1 else {
            let text = openSSLErrorText()
            SSL_CTX_free(context)
            throw NetworkFailure(
                .tlsSetup, "cannot load CA certificates (file \(caFile ?? "-"), dir \(directory ?? "-")): \(text)")
        }
        return context
    }

    /// Runs the TLS handshake on this connection; afterwards every read and write goes through TLS.
    /// - Parameters:
    ///   - verify: verify the certificate chain against `caFile` / `caDir`, else the system's CA directory.
    ///   - checkHost: require the certificate to name `host` (a DNS SAN, or an IP SAN for an address literal).
    ///     Only meaningful with `verify`.
    ///   - groups: key-exchange groups in order of preference (OpenSSL syntax); nil for OpenSSL's default.
    func startTLS(
        host: String, isIPLiteral: Bool, verify: Bool, checkHost: Bool, caFile: String?, caDir: String?,
        groups: String? = nil
    ) throws(NetworkFailure) {
        let context = try NetworkStream.tlsContext(caFile: caFile, caDir: caDir, verify: verify, groups: groups)
        // SSL_new takes its own reference to the context, so ours goes now and the session frees the rest.
        defer { SSL_CTX_free(context) }
        guard let ssl = SSL_new(context) else { throw NetworkFailure(.tlsSetup, "SSL_new: \(openSSLErrorText())") }
        self.ssl = ssl
        var configured = SSL_set_fd(ssl, fd) == 1
        if isIPLiteral {
            // SNI must not carry an IP address (RFC 6066 §3); the certificate must name it in an IP SAN.
            if checkHost {
                configured = configured && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1
            }
        } else {
            if checkHost { configured = configured && SSL_set1_host(ssl, host) == 1 }
            configured = configured && copenssl_set_tlsext_host_name(ssl, host) == 1
        }
        guard configured else {
            throw NetworkFailure(.tlsSetup, "configuring the TLS connection: \(openSSLErrorText())")
        }
        do throws(NetworkFailure) {
            _ = try perform(phase: "TLS handshake with \(host)", events: 0) { Int(SSL_connect(ssl)) }
        } catch {
            let verifyResult = SSL_get_verify_result(ssl)
            if error.kind == .tls && verifyResult != Int(X509_V_OK) {
                let reason = String(cString: X509_verify_cert_error_string(verifyResult))
                throw NetworkFailure(.tls, "certificate of \(host) not accepted: \(reason)")
            }
            throw error
        }
    }

    // MARK: - I/O

    /// Runs a non-blocking operation until it completes; returns its result (0 for end of stream).
    /// `events` is what a plain socket waits for after EAGAIN; TLS says itself what it waits for.
    private func perform(phase: String, events: Int16, _ operation: () -> Int) throws(NetworkFailure) -> Int {
        while true {
            // Checked here too, not only before blocking: a peer that never pauses must not outlast the deadline.
            if deadline.remainingMs == 0 {
                throw NetworkFailure(.timeout, "exchange not done within \(deadline.budgetMs) ms (\(phase))")
            }
            switch ssl == nil ? plainStep(operation, events) : tlsStep(operation) {
            case .done(let count): return count
            case .retry: continue
            case .wait(let events): try wait(fd, events, deadline, phase)
            case .failed(let kind, let text): throw NetworkFailure(kind, "\(phase): \(text)")
            }
        }
    }

    private func plainStep(_ operation: () -> Int, _ events: Int16) -> Step {
        let result = operation()
        if result >= 0 { return .done(result) }
        switch errno {
        case EINTR: return .retry
        case EAGAIN, EWOULDBLOCK: return .wait(events)
        default: return .failed(.reset, errnoText())
        }
    }

    private func tlsStep(_ operation: () -> Int) -> Step {
        ERR_clear_error()
        let result = operation()
        if result > 0 { return .done(result) }
        let error = SSL_get_error(ssl, Int32(result))
        let savedErrno = errno
        switch error {
        case SSL_ERROR_WANT_READ: return .wait(Int16(POLLIN))
        case SSL_ERROR_WANT_WRITE: return .wait(Int16(POLLOUT))
        case SSL_ERROR_ZERO_RETURN: return .done(0)
        case SSL_ERROR_SYSCALL:
            if savedErrno == EINTR { return .retry }
            return .failed(.reset, savedErrno == 0 ? "connection closed by peer" : errnoText(savedErrno))
        default: return .failed(.tls, openSSLErrorText())
        }
    }

    /// Writes all of `bytes`.
    func writeAll(_ bytes: [UInt8], phase: String = "sending the request") throws(NetworkFailure) {
        // One buffer address for all retries: OpenSSL requires a retried SSL_write to pass the same buffer.
        // (Array.withUnsafeBytes is rethrows, not typed, hence the Result.)
        let result = bytes.withUnsafeBytes { raw -> Result<Void, NetworkFailure> in
            guard let base = raw.baseAddress else { return .success(()) }
            var offset = 0
            while offset < raw.count {
                let rest = raw.count - offset
                do throws(NetworkFailure) {
                    offset += try perform(phase: phase, events: Int16(POLLOUT)) { [offset] () -> Int in
                        if let ssl { return Int(SSL_write(ssl, base + offset, Int32(clamping: rest))) }
                        return send(fd, base + offset, rest, Int32(MSG_NOSIGNAL))
                    }
                } catch {
                    return .failure(error)
                }
            }
            return .success(())
        }
        try result.get()
    }

    /// Reads what is available into `buffer`; 0 at end of stream.
    func read(into buffer: inout [UInt8], phase: String) throws(NetworkFailure) -> Int {
        let result = buffer.withUnsafeMutableBytes { raw -> Result<Int, NetworkFailure> in
            guard let base = raw.baseAddress else { return .success(0) }
            return Result { () throws(NetworkFailure) in
                try perform(phase: phase, events: Int16(POLLIN)) { () -> Int in
                    if let ssl { return Int(SSL_read(ssl, base, Int32(clamping: raw.count))) }
                    return recv(fd, base, raw.count, 0)
                }
            }
        }
        return try result.get()
    }
}

private enum Step {
    case done(Int)
    case wait(Int16)
    case retry
    case failed(NetworkFailure.Kind, String)
}

/// Waits until `fd` is ready for `events` or the deadline passes.
private func wait(_ fd: Int32, _ events: Int16, _ deadline: Deadline, _ phase: String) throws(NetworkFailure) {
    while true {
        let ms = deadline.remainingMs
        if ms == 0 { throw NetworkFailure(.timeout, "exchange not done within \(deadline.budgetMs) ms (\(phase))") }
        var entry = pollfd(fd: fd, events: events, revents: 0)
        let ready = poll(&entry, 1, ms)
        if ready > 0 { return }  // POLLERR / POLLHUP: the next call reports the error
        if ready < 0 && errno != EINTR { throw NetworkFailure(.reset, "poll: \(errnoText())") }
    }
}

func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// The oldest queued OpenSSL error, which names the root cause.
func openSSLErrorText() -> String {
    let code = ERR_get_error()
    if code == 0 { return "unknown OpenSSL error" }
    var text = [CChar](repeating: 0, count: 256)
    ERR_error_string_n(code, &text, text.count)
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
