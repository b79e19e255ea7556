/// One backend message: its type byte and its body (without the length).
struct BackendMessage: Equatable {
    var type: UInt8
    var body: [UInt8]
}

/// Splits received bytes into backend messages: a type byte, an Int32 length that counts itself, the body.
struct MessageReader {
    /// Our rows are a few hundred bytes; anything this large is not a server we want to talk to.
    static let maxMessageBytes = 1 << 20

    private var bytes: [UInt8] = []
    private var start = 0

    mutating func append(_ received: ArraySlice<UInt8>) {
        if start > 0 && (start == bytes.count || start >= 64 * 1024) {
            // Drop what was read, also when a server keeps the buffer from ever emptying (messages streamed
            // back to back): the buffer then stays bounded by one message plus one read.
            bytes.removeSubrange(..<start)
            start = 0
        }
        bytes += received
    }

    /// The next complete message, or nil until more bytes arrive.
    mutating func next() throws(PostgresError) -> BackendMessage? {
        guard bytes.count - start >= 5 else { return nil }
        let length =
            Int(bytes[start + 1]) << 24 | Int(bytes[start + 2]) << 16 | Int(bytes[start + 3]) << 8
            | Int(bytes[start + 4])
        guard length >= 4, length <= MessageReader.maxMessageBytes else {
            throw PostgresError(.protocolViolation, "invalid message length \(length)")
        }
        guard bytes.count - start >= 1 + length else { return nil }
        let message = BackendMessage(type: bytes[start], body: Array(bytes[start + 5..<start + 1 + length]))
        start += 1 + length
        return message
    }
}

/// Reads big-endian integers and C strings from a message body.
struct MessageCursor {
    private let data: [UInt8]
    private var position = 0

    init(_ data: [UInt8]) { self.data = data }

    var rest: ArraySlice<UInt8> { data[position...] }

    mutating func int32() throws(PostgresError) -> Int32 {
        let b = try self.bytes(4)
        return Int32(bitPattern: UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3]))
    }

    mutating func int16() throws(PostgresError) -> Int16 {
        let b = try self.bytes(2)
        return Int16(bitPattern: UInt16(b[0]) << 8 | UInt16(b[1]))
    }

    mutating func bytes(_ count: Int) throws(PostgresError) -> [UInt8] {
        guard count >= 0, data.count - position >= count else {
            throw PostgresError(.protocolViolation, "message shorter than its fields")
        }
        defer { position += count }
        return Array(data[position..<position + count])
    }

    /// The next NUL-terminated string, or nil at the end of the body.
    mutating func cString() throws(PostgresError) -> String? {
        guard position < data.count else { return nil }
        guard let end = data[position...].firstIndex(of: 0) else {
            throw PostgresError(.protocolViolation, "unterminated string in a message")
        }
        defer { position = end + 1 }
        return String(decoding: data[position..<end], as: UTF8.self)
    }
}

/// Frontend message encoding and the few backend bodies we decode
/// (https://www.postgresql.org/docs/15/protocol-message-formats.html).
enum Message {
    /// Protocol version 3.0.
    static let protocolVersion: Int32 = 196_608
    static let sslRequestCode: Int32 = 80_877_103

    static func sslRequest() -> [UInt8] { int32(8) + int32(sslRequestCode) }

    /// StartupMessage: no type byte; the length, the version, then name/value C strings and a final NUL.
    static func startup(_ parameters: [(String, String)]) -> [UInt8] {
        var body = int32(protocolVersion)
        for (name, value) in parameters { body += cString(name) + cString(value) }
        body.append(0)
        return int32(Int32(body.count + 4)) + body
    }

    static func password(_ bytes: [UInt8]) -> [UInt8] { message("p", bytes + [0]) }

    static func saslInitialResponse(_ mechanism: String, _ data: [UInt8]) -> [UInt8] {
        message("p", cString(mechanism) + int32(Int32(data.count)) + data)
    }

    static func saslResponse(_ data: [UInt8]) -> [UInt8] { message("p", data) }

    /// Parse into the unnamed statement, parameter types left for the server to infer.
    static func parse(_ sql: String) -> [UInt8] { message("P", cString("") + cString(sql) + int16(0)) }

    /// Bind the unnamed portal: every parameter and result in text format (zero format codes = all text).
    static func bind(_ parameters: [String?]) -> [UInt8] {
        var body = cString("") + cString("") + int16(0) + int16(Int16(parameters.count))
        for parameter in parameters {
            if let parameter {
                let bytes = Array(parameter.utf8)
                body += int32(Int32(bytes.count)) + bytes
            } else {
                body += int32(-1)
            }
        }
        return message("B", body + int16(0))
    }

    /// Execute the unnamed portal with no row limit.
    static func execute() -> [UInt8] { message("E", cString("") + int32(0)) }

    static func sync() -> [UInt8] { message("S", []) }

    static func terminate() -> [UInt8] { message("X", []) }

    /// A DataRow's columns as text (NULL → nil).
    static func dataRow(_ body: [UInt8]) throws(PostgresError) -> [String?] {
        var cursor = MessageCursor(body)
        let count = try cursor.int16()
        var columns: [String?] = []
        for _ in 0..<max(count, 0) {
            let length = try cursor.int32()
            columns.append(length < 0 ? nil : String(decoding: try cursor.bytes(Int(length)), as: UTF8.self))
        }
        return columns
    }

    /// An ErrorResponse's or NoticeResponse's fields by their type byte.
    static func errorFields(_ body: [UInt8]) -> [UInt8: String] {
        var fields: [UInt8: String] = [:]
        var i = 0
        while i < body.count, body[i] != 0 {
            let type = body[i]
            guard let end = body[(i + 1)...].firstIndex(of: 0) else { break }
            fields[type] = String(decoding: body[(i + 1)..<end], as: UTF8.self)
            i = end + 1
        }
        return fields
    }

    /// A message type for an error text: the letter when printable.
    static func name(_ type: UInt8) -> String {
        (0x21...0x7E).contains(type) ? "'\(String(decoding: [type], as: UTF8.self))'" : "0x\(String(type, radix: 16))"
    }

    private static func message(_ type: Character, _ body: [UInt8]) -> [UInt8] {
        [type.asciiValue ?? 0] + int32(Int32(body.count + 4)) + body
    }

    static func int32(_ value: Int32) -> [UInt8] {
        let v = UInt32(bitPattern: value)
        return [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    static func int16(_ value: Int16) -> [UInt8] {
        let v = UInt16(bitPattern: value)
        return [UInt8(v >> 8), UInt8(v & 0xFF)]
    }

    static func cString(_ text: String) -> [UInt8] { Array(text.utf8) + [0] }
}
