/// One JSON log line per request, for stderr. It carries no token, secret or request body.
public enum Log {
    /// - Parameter awsRequestID: the invocation's id on AWS Lambda, logged as `aws_request_id`; nil elsewhere.
    static func line(
        response: Response, username: String?, durationMs: Double, stdoutLost: Bool, awsRequestID: String? = nil
    ) -> String {
        let status = response.status
        var members: [(String, JSON)] = [
            ("time", .string(Clock.rfc3339(ms: Clock.nowMs()))),
            ("level", .string(status >= 500 ? "error" : status >= 400 ? "warn" : "info")),
            ("request_id", response.requestID.map { .string($0) } ?? .null),
            ("action", response.action.map { .string($0.rawValue) } ?? .null),
            ("username", username.map { .string($0) } ?? .null),
            ("outcome", .string(response.outcome.errorCode ?? "ok")),
            ("status", .number(String(status))),
            ("duration_ms", .number(String(Double(Int(durationMs * 1000)) / 1000))),
        ]
        if case .failure(let error) = response.outcome, let detail = error.detail {
            members.append(("detail", .string(detail)))
        }
        if let awsRequestID { members.append(("aws_request_id", .string(awsRequestID))) }
        if stdoutLost {
            members[1].1 = .string("error")
            members.append(("stdout", .string("lost: the response could not be written")))
        }
        return JSONWriter.serialize(.object(members)) + "\n"
    }
}
