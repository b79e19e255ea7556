/// A backend message, decoded once, here, from its type byte and body (postgres-nio's `PostgresBackendMessage`;
/// https://www.postgresql.org/docs/15/protocol-message-formats.html). Everything after decoding switches on this
/// enum, never on raw bytes; which message is legal when is for the state machines to say.
enum BackendMessage: Equatable {
    case authentication(Authentication)
    case parameterStatus
    case backendKeyData
    case negotiateProtocolVersion
    case readyForQuery(TransactionStatus)
    case parseComplete
    case bindComplete
    /// A row's columns as text (NULL → nil).
    case dataRow([String?])
    case commandComplete
    case emptyQueryResponse
    case noData
    case portalSuspended
    /// Only sent for a Describe, which this client never sends.
    case rowDescription
    /// Only sent for a Describe, which this client never sends.
    case parameterDescription
    case notification
    case notice
    case error(ServerError)

    /// The `R` messages: a request to authenticate, a SASL step, or the end of authentication.
    enum Authentication: Equatable {
        case ok
        case cleartextPassword
        case md5Password(salt: [UInt8])
        /// The SASL mechanisms the server offers, in its order.
        case sasl(mechanisms: [String])
        /// SCRAM's server-first-message.
        case saslContinue([UInt8])
        /// SCRAM's server-final-message.
        case saslFinal([UInt8])
        /// Kerberos V5 (2), SCM credentials (6), GSSAPI (7, 8), SSPI (9), or a code the protocol does not define.
        case unsupported(Int32)
    }

    /// ReadyForQuery's transaction status.
    enum TransactionStatus: UInt8 {
        case idle = 0x49  // I
        case inTransaction = 0x54  // T
        case failedTransaction = 0x45  // E
    }

    /// The fields of an ErrorResponse this client uses (https://www.postgresql.org/docs/15/protocol-error-fields.html).
    /// Never DETAIL: it quotes the values of the row ("Key (claimed_by)=(user-1) already exists").
    struct ServerError: Equatable {
        /// `V` (not localized), else `S`.
        var severity: String?
        /// `C`, only when it is five digits or capital letters.
        var sqlState: String?
        /// `M`.
        var message: String?
        /// `n`: the constraint a unique violation names.
        var constraint: String?
    }

    /// Decodes one message. The body must be exactly what the type says: no field missing, nothing left over.
    /// - Throws: `PostgresError` of kind `.protocolViolation` for an unknown type or a malformed body.
    static func decode(type: UInt8, body: ArraySlice<UInt8>) throws(PostgresError) -> BackendMessage {
        var cursor = MessageCursor(body)
        let message: BackendMessage
        switch type {
        case UInt8(ascii: "R"): message = .authentication(try decodeAuthentication(&cursor))
        case UInt8(ascii: "S"):
            _ = try cursor.cString()
            _ = try cursor.cString()
            message = .parameterStatus
        case UInt8(ascii: "K"):
            _ = try cursor.skip(8)
            message = .backendKeyData
        case UInt8(ascii: "v"):
            _ = try cursor.int32()
            for _ in 0..<max(try cursor.int32(), 0) { _ = try cursor.cString() }
            message = .negotiateProtocolVersion
        case UInt8(ascii: "Z"):
            guard let status = TransactionStatus(rawValue: try cursor.byte()) else {
                throw PostgresError(.protocolViolation, "invalid ReadyForQuery status")
            }
            message = .readyForQuery(status)
        case UInt8(ascii: "1"): message = .parseComplete
        case UInt8(ascii: "2"): message = .bindComplete
        case UInt8(ascii: "D"): message = .dataRow(try decodeDataRow(&cursor))
        case UInt8(ascii: "C"):
            _ = try cursor.cString()
            message = .commandComplete
        case UInt8(ascii: "I"): message = .emptyQueryResponse
        case UInt8(ascii: "n"): message = .noData
        case UInt8(ascii: "s"): message = .portalSuspended
        case UInt8(ascii: "T"):
            cursor.skipRest()
            message = .rowDescription
        case UInt8(ascii: "t"):
            cursor.skipRest()
            message = .parameterDescription
        case UInt8(ascii: "A"):
            _ = try cursor.int32()
            _ = try cursor.cString()
            _ = try cursor.cString()
            message = .notification
        case UInt8(ascii: "N"):
            _ = try decodeFields(&cursor)
            message = .notice
        case UInt8(ascii: "E"): message = .error(try decodeFields(&cursor))
        default:
            // CopyInResponse, CopyData, FunctionCallResponse…: nothing this client asks for.
            throw PostgresError(.protocolViolation, "unexpected message \(name(type))")
        }
        guard cursor.isAtEnd else { throw PostgresError(.protocolViolation, "message \(name(type)) is too long") }
        return message
    }

    private static func decodeAuthentication(_ cursor: inout MessageCursor) throws(PostgresError) -> Authentication {
        let code = try cursor.int32()
        switch code {
        case 0: return .ok
        case 3: return .cleartextPassword
        case 5: return .md5Password(salt: try cursor.bytes(4))
        case 10:
            var mechanisms: [String] = []
            while true {
                let name = try cursor.cString()
                if name.isEmpty { break }
                mechanisms.append(name)
            }
            return .sasl(mechanisms: mechanisms)
        case 11: return .saslContinue(cursor.rest())
        case 12: return .saslFinal(cursor.rest())
        default:
            cursor.skipRest()  // GSS/SSPI carry data; the code alone says we cannot continue
            return .unsupported(code)
        }
    }

    private static func decodeDataRow(_ cursor: inout MessageCursor) throws(PostgresError) -> [String?] {
        let count = Int(try cursor.int16())
        guard count >= 0 else { throw PostgresError(.protocolViolation, "negative column count in DataRow") }
        var columns: [String?] = []
        columns.reserveCapacity(count)
        for _ in 0..<count {
            let length = try cursor.int32()
            if length == -1 {
                columns.append(nil)
            } else {
                guard length >= 0 else { throw PostgresError(.protocolViolation, "negative column length in DataRow") }
                columns.append(String(decoding: try cursor.slice(Int(length)), as: UTF8.self))
            }
        }
        return columns
    }

    /// ErrorResponse / NoticeResponse: (type byte, C string) pairs ending with a NUL.
    private static func decodeFields(_ cursor: inout MessageCursor) throws(PostgresError) -> ServerError {
        var fields = ServerError()
        while true {
            let type = try cursor.byte()
            if type == 0 { return fields }
            let value = try cursor.cString()
            switch type {
            case UInt8(ascii: "V"): fields.severity = value
            case UInt8(ascii: "S"): fields.severity = fields.severity ?? value
            case UInt8(ascii: "C"):
                let valid =
                    value.utf8.count == 5
                    && value.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) }
                fields.sqlState = valid ? value : nil
            case UInt8(ascii: "M"): fields.message = value
            case UInt8(ascii: "n"): fields.constraint = value
            default: break
            }
        }
    }

    /// A message type for an error text: the letter when printable.
    static func name(_ type: UInt8) -> String {
        (0x21...0x7E).contains(type) ? "'\(String(decoding: [type], as: UTF8.self))'" : "0x\(String(type, radix: 16))"
    }
}

extension BackendMessage {
    /// The message's name for an error text.
    var kind: String {
        switch self {
        case .authentication(let request): return request.kind
        case .parameterStatus: return "ParameterStatus"
        case .backendKeyData: return "BackendKeyData"
        case .negotiateProtocolVersion: return "NegotiateProtocolVersion"
        case .readyForQuery: return "ReadyForQuery"
        case .parseComplete: return "ParseComplete"
        case .bindComplete: return "BindComplete"
        case .dataRow: return "DataRow"
        case .commandComplete: return "CommandComplete"
        case .emptyQueryResponse: return "EmptyQueryResponse"
        case .noData: return "NoData"
        case .portalSuspended: return "PortalSuspended"
        case .rowDescription: return "RowDescription"
        case .parameterDescription: return "ParameterDescription"
        case .notification: return "NotificationResponse"
        case .notice: return "NoticeResponse"
        case .error: return "ErrorResponse"
        }
    }
}

extension BackendMessage.Authentication {
    /// The request's name for an error text.
    var kind: String {
        switch self {
        case .ok: return "AuthenticationOk"
        case .cleartextPassword: return "AuthenticationCleartextPassword"
        case .md5Password: return "AuthenticationMD5Password"
        case .sasl: return "AuthenticationSASL"
        case .saslContinue: return "AuthenticationSASLContinue"
        case .saslFinal: return "AuthenticationSASLFinal"
        case .unsupported(let code): return "authentication request \(code)"
        }
    }
}

/// Reads big-endian integers and C strings from a message body in place.
struct MessageCursor {
    private let data: ArraySlice<UInt8>
    private var position: Int

    init(_ data: ArraySlice<UInt8>) {
        self.data = data
        position = data.startIndex
    }

    /// True once every byte was read.
    var isAtEnd: Bool { position == data.endIndex }

    /// The bytes not read yet, copied; the cursor ends.
    mutating func rest() -> [UInt8] {
        defer { position = data.endIndex }
        return Array(data[position...])
    }

    /// Skips what is left.
    mutating func skipRest() { position = data.endIndex }

    /// The next `count` bytes, in place.
    mutating func slice(_ count: Int) throws(PostgresError) -> ArraySlice<UInt8> {
        guard count >= 0, data.endIndex - position >= count else {
            throw PostgresError(.protocolViolation, "message shorter than its fields")
        }
        defer { position += count }
        return data[position..<position + count]
    }

    mutating func skip(_ count: Int) throws(PostgresError) { _ = try slice(count) }

    mutating func bytes(_ count: Int) throws(PostgresError) -> [UInt8] { Array(try slice(count)) }

    mutating func byte() throws(PostgresError) -> UInt8 { try slice(1).first ?? 0 }

    /// A big-endian Int32.
    mutating func int32() throws(PostgresError) -> Int32 {
        let b = try slice(4)
        let i = b.startIndex
        return Int32(
            bitPattern: UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3]))
    }

    /// A big-endian Int16.
    mutating func int16() throws(PostgresError) -> Int16 {
        let b = try slice(2)
        return Int16(bitPattern: UInt16(b[b.startIndex]) << 8 | UInt16(b[b.startIndex + 1]))
    }

    /// The next NUL-terminated string.
    mutating func cString() throws(PostgresError) -> String {
        guard let end = data[position...].firstIndex(of: 0) else {
            throw PostgresError(.protocolViolation, "unterminated string in a message")
        }
        defer { position = end + 1 }
        return String(decoding: data[position..<end], as: UTF8.self)
    }
}

/// Splits received bytes into backend messages (a type byte, an Int32 length that counts itself, the body) and
/// decodes each, within a byte budget per exchange: everything the server sends from our request up to its
/// ReadyForQuery. Our statements return a few hundred bytes, so a server that sends more is refused before it can
/// make us hold it, and the buffer never holds more than the budget plus one read.
struct MessageReader {
    /// Bytes one exchange (start-up, or one round trip of statements) may receive.
    static let maxExchangeBytes = 64 * 1024

    private var bytes: [UInt8] = []
    private var start = 0
    /// Bytes of complete messages taken in the current exchange.
    private var taken = 0

    /// Starts a new exchange: its budget is whole again.
    mutating func startExchange() { taken = 0 }

    /// Adds bytes from a read.
    mutating func append(_ received: ArraySlice<UInt8>) {
        if start > 0 {
            // Drop what was decoded: the buffer holds at most the message being received plus one read.
            bytes.removeSubrange(..<start)
            start = 0
        }
        bytes += received
    }

    /// The next complete message, decoded, or nil until more bytes arrive.
    /// - Throws: `PostgresError` of kind `.protocolViolation` for a malformed message or one over the budget.
    mutating func next() throws(PostgresError) -> BackendMessage? {
        guard bytes.count - start >= 5 else { return nil }
        let length =
            Int(bytes[start + 1]) << 24 | Int(bytes[start + 2]) << 16 | Int(bytes[start + 3]) << 8
            | Int(bytes[start + 4])
        guard length >= 4 else { throw PostgresError(.protocolViolation, "invalid message length \(length)") }
        guard taken + 1 + length <= MessageReader.maxExchangeBytes else {
            throw PostgresError(
                .protocolViolation, "the server sent more than \(MessageReader.maxExchangeBytes) bytes in one answer")
        }
        guard bytes.count - start >= 1 + length else { return nil }
        let type = bytes[start]
        let body = bytes[start + 5..<start + 1 + length]
        start += 1 + length
        taken += 1 + length
        return try BackendMessage.decode(type: type, body: body)
    }
}
