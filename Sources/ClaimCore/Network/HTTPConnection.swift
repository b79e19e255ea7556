/// A plain HTTP/1.1 connection kept open from one request to the next (keep-alive), one request at a time: for AWS
/// Lambda's Runtime API, which is plain HTTP on the sandbox's loopback. Keeping it saves a TCP connect and close per
/// request, two per invocation (BENCHMARKS.md, "AWS Lambda").
final class HTTPConnection {
    let target: URLParts
    private var stream: NetworkStream?

    /// No I/O until the first request.
    init(_ target: URLParts) {
        self.target = target
    }

    /// Sends one request and reads its whole response, whatever its status. A kept connection that the peer closed
    /// while it was idle is replaced before sending; a GET that finds it closed only as it is sent (the peer's FIN
    /// still on its way) is sent once more on a new one, as HTTP allows for an idempotent request. After a failure, or
    /// a response that ends the connection, the next request opens a new one.
    /// - Throws: `HTTPFailure` saying which step failed (refused, reset, timeout, a malformed or oversized response).
    func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8] = [], deadline: Deadline,
        maxResponseBytes: Int
    ) throws(HTTPFailure) -> HTTPResponse {
        let kept = stream.flatMap { $0.isQuiet ? $0 : nil }
        // Given back only when the exchange completed and the peer keeps the connection open.
        stream = nil
        do throws(HTTPFailure) {
            return try exchange(
                on: kept, method, path, headers: headers, body: body, deadline: deadline,
                maxResponseBytes: maxResponseBytes)
        } catch  where kept != nil && method == "GET" && error.kind == .reset {
            return try exchange(
                on: nil, method, path, headers: headers, body: body, deadline: deadline,
                maxResponseBytes: maxResponseBytes)
        }
    }

    private func exchange(
        on kept: NetworkStream?, _ method: String, _ path: String, headers: [(String, String)], body: [UInt8],
        deadline: Deadline, maxResponseBytes: Int
    ) throws(HTTPFailure) -> HTTPResponse {
        let stream: NetworkStream
        if let kept {
            stream = kept
            stream.deadline = deadline
        } else {
            stream = try network { () throws(NetworkFailure) in
                try NetworkStream.connect(host: target.host, port: target.port, deadline: deadline)
            }
        }
        let head = HTTPClient.requestHead(
            method, path, authority: target.authority, headers: headers, bodyCount: body.count, close: false)
        try network { () throws(NetworkFailure) in try stream.writeAll(head + body) }
        let (response, closed) = try HTTPClient.readResponse(from: stream, maxResponseBytes: maxResponseBytes)
        if !closed && !(response.header("connection")?.lowercased().hasSubstring("close") ?? false) {
            self.stream = stream
        }
        return response
    }
}
