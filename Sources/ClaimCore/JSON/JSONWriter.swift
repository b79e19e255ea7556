/// Serialises JSON text without any Foundation machinery; output is compact and keys keep their given order.
public struct JSONWriter {
    /// The UTF-8 bytes written so far.
    public private(set) var bytes: [UInt8] = []

    public init() { bytes.reserveCapacity(512) }

    /// The text written so far.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    private mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Appends `s` as a JSON string literal, escaping what RFC 8259 requires plus U+2028/2029 (which break
    /// JavaScript parsers that read JSON as code).
    public mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        let utf8 = Array(s.utf8)
        var i = 0
        while i < utf8.count {
            let b = utf8[i]
            switch b {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case UInt8(ascii: "\n"): raw("\\n")
            case UInt8(ascii: "\r"): raw("\\r")
            case UInt8(ascii: "\t"): raw("\\t")
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                raw("\\u00")
                bytes.append(hex[Int(b >> 4)])
                bytes.append(hex[Int(b & 0xF)])
            case 0xE2 where i + 2 < utf8.count && utf8[i + 1] == 0x80 && (utf8[i + 2] == 0xA8 || utf8[i + 2] == 0xA9):
                raw(utf8[i + 2] == 0xA8 ? "\\u2028" : "\\u2029")
                i += 2
            default:
                bytes.append(b)
            }
            i += 1
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Appends any JSON value.
    public mutating func value(_ v: JSON) {
        switch v {
        case .null: raw("null")
        case .bool(let b): b ? raw("true") : raw("false")
        case .number(let n): bytes.append(contentsOf: n.utf8)
        case .string(let s): string(s)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (i, e) in elements.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                value(e)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            for (i, (k, e)) in members.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                string(k)
                bytes.append(UInt8(ascii: ":"))
                value(e)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// The serialised text of `v`.
    public static func serialize(_ v: JSON) -> String {
        var w = JSONWriter()
        w.value(v)
        return w.text
    }
}
