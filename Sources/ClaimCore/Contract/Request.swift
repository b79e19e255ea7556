/// One decoded, validated request. Authentication is not done here; `userID` and `token` are as sent.
public struct Request: Sendable {
    public enum Action: String, CaseIterable, Sendable { case challenge, verify, release, status }

    public var action: Action
    /// Normalized: trimmed and ASCII-lowercased, then checked against the username rule.
    public var username: String
    public var userID: String?
    public var token: String?
    public var requestID: String?
    /// Under OpenWhisk: a web action's Authorization header, from `__ow_headers.authorization`.
    public var headerAuthorization: String?

    /// The largest request accepted, in bytes.
    public static let maxBytes = 65536
    static let fields = ["action", "username", "user_id", "token", "request_id"]

    /// What can be echoed even from a request that fails validation: the action when it is a known one and the
    /// request id when it is within its rule.
    public static func echo(from object: JSON) -> (action: Action?, requestID: String?) {
        let action = object["action"]?.stringValue.flatMap(Action.init(rawValue:))
        let requestID = object["request_id"]?.stringValue.flatMap { isValidRequestID($0) ? $0 : nil }
        return (action, requestID)
    }

    /// Parses the raw stdin bytes into a JSON object.
    /// - Throws: `payload_too_large` over `maxBytes`, `invalid_json` when not one JSON object.
    public static func parseObject(_ bytes: [UInt8]) throws(ClaimError) -> JSON {
        if bytes.count > maxBytes {
            throw ClaimError(.payloadTooLarge, "request is larger than \(maxBytes) bytes")
        }
        if bytes.isEmpty { throw ClaimError(.invalidJSON, "request is empty; expected one JSON object") }
        let value: JSON
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw ClaimError(.invalidJSON, "request is not valid JSON: \(error.description)")
        }
        guard case .object = value else {
            throw ClaimError(
                .invalidJSON,
                "request must be a JSON object, not \(value.typeName == "array" ? "an" : "a") \(value.typeName)")
        }
        return value
    }

    /// Validates fields, types and the username rule.
    /// - Parameter openWhisk: `__ow_*` fields belong to the runtime (OpenWhisk's action proxy) and are skipped,
    ///   but for the Authorization header in `__ow_headers`; otherwise they are unknown fields like any other.
    /// - Throws: `invalid_request` for unknown/missing/mistyped fields, `invalid_username` for the username rule.
    public init(_ object: JSON, openWhisk: Bool = false) throws(ClaimError) {
        guard case .object(let members) = object else {
            throw ClaimError(.invalidJSON, "request must be a JSON object")
        }
        // Plain locals, not a Dictionary: its generic metadata costs more at start-up than this whole loop.
        var actionText: String?, rawUsername: String?, userID: String?, token: String?, requestID: String?
        var headerAuthorization: String?
        for (key, value) in members {
            guard Request.fields.contains(key) else {
                if openWhisk && key.hasPrefix(OpenWhisk.parameterPrefix) {
                    if key == "__ow_headers" { headerAuthorization = try OpenWhisk.authorization(inHeaders: value) }
                    continue
                }
                throw ClaimError(.invalidRequest, "unknown field \"\(Request.printable(key))\"")
            }
            guard let s = value.stringValue else {
                throw ClaimError(.invalidRequest, "field \"\(key)\" must be a string, not \(value.typeName)")
            }
            switch key {
            case "action": actionText = s
            case "username": rawUsername = s
            case "user_id": userID = s
            case "token": token = s
            default: requestID = s
            }
        }
        guard let actionText else {
            throw ClaimError(.invalidRequest, "missing field \"action\"")
        }
        guard let action = Action(rawValue: actionText) else {
            let known = Action.allCases.map(\.rawValue).joined(separator: ", ")
            throw ClaimError(.invalidRequest, "unknown action; expected one of: \(known)")
        }
        if let id = requestID, !Request.isValidRequestID(id) {
            throw ClaimError(
                .invalidRequest, "field \"request_id\" must be at most 128 characters, without control characters")
        }
        guard let rawUsername else {
            throw ClaimError(.invalidRequest, "missing field \"username\"")
        }
        self.action = action
        self.username = Request.normalizeUsername(rawUsername)
        self.userID = userID
        self.token = token
        self.requestID = requestID
        self.headerAuthorization = headerAuthorization
        guard Request.isValidUsername(username) else {
            throw ClaimError(
                .invalidUsername,
                "username must be 1-64 characters of a-z, 0-9, '.', '_' or '-' after trimming and lowercasing")
        }
    }

    /// Trims ASCII whitespace and lowercases ASCII letters only: Unicode case mapping would fold look-alikes
    /// such as the Kelvin sign (U+212A) into "k" and let them pass the rule.
    public static func normalizeUsername(_ raw: String) -> String {
        var bytes = Array(raw.utf8)
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || (0x09...0x0D).contains($0) }
        while let last = bytes.last, isSpace(last) { bytes.removeLast() }
        let start = bytes.firstIndex { !isSpace($0) } ?? bytes.endIndex
        let lowered = bytes[start...].map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
        return String(decoding: lowered, as: UTF8.self)
    }

    /// 1-64 characters of `[a-z0-9._-]`.
    public static func isValidUsername(_ s: String) -> Bool {
        let bytes = s.utf8
        return (1...64).contains(bytes.count)
            && bytes.allSatisfy {
                (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
            }
    }

    /// 1-128 printable ASCII characters without spaces (0x21-0x7E): the trusted `user_id` rule.
    public static func isValidUserID(_ s: String) -> Bool {
        let bytes = s.utf8
        return (1...128).contains(bytes.count) && bytes.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// At most 128 characters, none of them a control character: it goes into logs and a text column.
    static func isValidRequestID(_ s: String) -> Bool {
        s.unicodeScalars.count <= 128 && !s.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    /// A field name safe to put in a message: at most 64 characters.
    static func printable(_ key: String) -> String {
        key.unicodeScalars.count <= 64 ? key : String(String.UnicodeScalarView(key.unicodeScalars.prefix(64))) + "..."
    }
}
