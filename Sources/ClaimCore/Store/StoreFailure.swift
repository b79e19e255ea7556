/// Why a claim store failed, in words that do not depend on the backend: the one vocabulary that SQLite and
/// PostgreSQL errors are classified into. Each failure's code, message and retry hint are written here once (the
/// idea of argument-parser's `MessageInfo`), so both backends answer a fault with the same response; the backends
/// only decide which failure they met.
enum StoreFailure: Equatable {
    /// A lock, a connection slot or a conflicting transaction was not had within CLAIM_BUSY_TIMEOUT_MS.
    case busy
    /// No server to talk to: refused, reset, closed, timed out, shutting down or starting up.
    case unreachable
    case readOnly
    case full
    case corrupt
    case cannotOpen
    case cannotCreateFolder
    case ioFailure
    /// The server refused our credentials, or we had none it could use.
    case loginRefused
    case noSuchDatabase
    /// The TLS handshake failed or the server's certificate was not accepted.
    case tlsRefused
    /// sslmode requires TLS and the server does not offer it.
    case tlsNotOffered
    /// The server skipped or failed proving it knows the password, or authenticated in a way `require_auth` forbids.
    case serverNotTrusted
    /// The peer broke the protocol, or sent more than a budget allows.
    case protocolViolation
    /// A schema version this binary does not know: newer, or none it ever wrote.
    case unknownSchema(found: Int, known: Int)
    /// Anything else the store reported.
    case failed

    /// The contract error: `detail` and `underlying` are for the log and for the store's own retry decision.
    func error(detail: String? = nil, underlying: (any Error)? = nil) -> ClaimError {
        let (code, message): (ClaimError.Code, String)
        switch self {
        case .busy: (code, message) = (.storeBusy, "the claim store is busy; retry shortly")
        case .unreachable: (code, message) = (.storeUnreachable, "the claim database cannot be reached; retry shortly")
        case .readOnly: (code, message) = (.storeUnavailable, "the claim database is read-only")
        case .full: (code, message) = (.storeUnavailable, "the claim database's volume is full")
        case .corrupt: (code, message) = (.storeUnavailable, "the claim database file is corrupt or not a database")
        case .cannotOpen: (code, message) = (.storeUnavailable, "the claim database cannot be opened")
        case .cannotCreateFolder: (code, message) = (.storeUnavailable, "the claim database's folder cannot be created")
        case .ioFailure: (code, message) = (.storeUnavailable, "the claim database had an I/O error")
        case .loginRefused: (code, message) = (.storeUnavailable, "the claim database refused the login")
        case .noSuchDatabase: (code, message) = (.storeUnavailable, "the claim database does not exist")
        case .tlsRefused: (code, message) = (.storeUnavailable, "the claim database's TLS connection was refused")
        case .tlsNotOffered: (code, message) = (.storeUnavailable, "the claim database does not offer TLS")
        case .serverNotTrusted:
            (code, message) = (.storeUnavailable, "the claim database's server did not authenticate as required")
        case .protocolViolation:
            (code, message) = (.storeUnavailable, "the claim database's server broke the PostgreSQL protocol")
        case .unknownSchema(let found, let known):
            code = .storeUnavailable
            message =
                found > known
                ? "the claim database has schema version \(found), newer than this binary's version \(known)"
                : "the claim database has schema version \(found), which no version of this binary wrote"
        case .failed: (code, message) = (.storeUnavailable, "the claim database failed")
        }
        // A 503 says when to come back: these conditions pass by themselves, within about a second.
        let retry = code.status == 503 ? 1 : nil
        return ClaimError(code, message, retryAfterSeconds: retry, detail: detail, underlying: underlying)
    }
}
