/// Apache OpenWhisk's action proxy (docker-skeleton, native actions): it runs the binary once per activation with
/// the parameters as JSON on stdin (and as argv[1]), takes the last line of stdout as the result, and sets
/// `__OW_ACTION_NAME` and the other `__OW_*` variables from the run message. A web action's parameters also hold
/// the HTTP request: `__ow_method`, `__ow_headers` (lower-case names), `__ow_path`, ...
public enum OpenWhisk {
    /// Parameters with this prefix belong to the runtime.
    static let parameterPrefix = "__ow_"

    /// A web action's parameters carry the HTTP method; a plain action's do not.
    public static func isWebAction(_ parameters: JSON) -> Bool {
        parameters["__ow_method"] != nil
    }

    /// The Authorization header among a web action's `__ow_headers` (OpenWhisk lower-cases header names).
    /// - Throws: `invalid_request` when `__ow_headers` is not an object or its `authorization` not a string.
    static func authorization(inHeaders headers: JSON) throws(ClaimError) -> String? {
        guard case .object = headers else {
            throw ClaimError(.invalidRequest, "field \"__ow_headers\" must be an object, not \(headers.typeName)")
        }
        guard let value = headers["authorization"] else { return nil }
        guard let text = value.stringValue else {
            throw ClaimError(.invalidRequest, "field \"__ow_headers.authorization\" must be a string")
        }
        return text
    }

    /// A web action's result: OpenWhisk answers the HTTP request with `statusCode`, `headers` and `body`, so the
    /// client gets our status, `application/json` and our response object (plus `Retry-After` on a 503).
    public static func webActionResult(_ response: Response) -> String {
        let result: JSON = .object([
            ("statusCode", .number(String(response.status))),
            ("headers", response.httpHeaders),
            ("body", response.object),
        ])
        return JSONWriter.serialize(result) + "\n"
    }
}
