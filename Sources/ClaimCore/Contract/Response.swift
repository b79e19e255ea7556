/// The one JSON line written to stdout.
public struct Response: Sendable {
    /// A result or an error. Our own enum rather than `Result<JSON, ClaimError>`: instantiating that generic
    /// type's metadata at first use costs ~80k instructions in a static binary, on every request.
    public enum Outcome: Sendable {
        case success(JSON)
        case failure(ClaimError)

        var errorCode: String? {
            if case .failure(let error) = self { return error.code.rawValue }
            return nil
        }
    }

    public var action: Request.Action?
    public var requestID: String?
    public var outcome: Outcome

    /// The HTTP-like status: 200 on success, else fixed by the error code.
    public var status: Int {
        switch outcome {
        case .success: return 200
        case .failure(let error): return error.code.status
        }
    }

    /// The process exit code that goes with this response.
    public var exitCode: Int32 {
        switch outcome {
        case .success: return 0
        case .failure(let error): return ExitCode.forResponse(status: status, code: error.code)
        }
    }

    /// The HTTP headers that carry this response where a runtime lets us set them (an OpenWhisk web action, an HTTP
    /// event on Lambda): JSON's Content-Type, and Retry-After whenever the error says when to come back.
    public var httpHeaders: JSON {
        var headers: [(String, JSON)] = [("content-type", .string("application/json"))]
        if case .failure(let error) = outcome, let retry = error.retryAfterSeconds {
            headers.append(("Retry-After", .string(String(retry))))
        }
        return .object(headers)
    }

    /// `object` as one line of JSON followed by a newline: what stdout carries.
    public var line: String { JSONWriter.serialize(object) + "\n" }

    /// `{"ok":…,"status":…,"action":…,"request_id":…,"result"|"error":…}`; a runtime may wrap it (Runtime/).
    public var object: JSON {
        var members: [(String, JSON)] = [
            ("ok", .bool(status == 200)),
            ("status", .number(String(status))),
            ("action", action.map { .string($0.rawValue) } ?? .null),
            ("request_id", requestID.map { .string($0) } ?? .null),
        ]
        switch outcome {
        case .success(let result):
            members.append(("result", result))
        case .failure(let error):
            var body: [(String, JSON)] = [("code", .string(error.code.rawValue)), ("message", .string(error.message))]
            if let retry = error.retryAfterSeconds { body.append(("retry_after_s", .number(String(retry)))) }
            members.append(("error", .object(body)))
        }
        return .object(members)
    }
}
