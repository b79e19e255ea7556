/// Frontend message encoding (https://www.postgresql.org/docs/15/protocol-message-formats.html).
enum FrontendMessage {
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
