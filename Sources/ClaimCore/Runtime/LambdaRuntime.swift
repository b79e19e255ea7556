/// AWS Lambda, with the binary as its own custom runtime (`provided.al2023`: deployed as `bootstrap`, or as a
/// container image's entrypoint). Lambda starts the process once and keeps it: it reads and validates the
/// configuration once, opens the store once, then takes one invocation at a time from the Runtime API
/// (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html) and answers it, until Lambda freezes or ends
/// the process.
public enum LambdaRuntime {
    /// Kept free before Lambda's deadline: posting the answer and the log line take well under a millisecond, the
    /// rest absorbs scheduling delays on a throttled instance (128 MB gets a fraction of a vCPU).
    static let answerMarginMs = 100

    /// Serves invocations until the Runtime API goes away; returns the exit code: 78 (EX_CONFIG) when the
    /// configuration is refused at start-up (after reporting it on `/runtime/init/error`), 74 (EX_IOERR) when the
    /// Runtime API cannot be reached or refuses to go on.
    /// - Parameters:
    ///   - address: `AWS_LAMBDA_RUNTIME_API`, `host:port`.
    ///   - environment: looks up an environment variable (through `Config` only).
    ///   - log: writes one log line to stderr.
    public static func run(address: String, environment: (String) -> String?, log: (String) -> Void) -> Int32 {
        let api: LambdaRuntimeAPI
        let config: Config
        do throws(ClaimError) {
            api = try LambdaRuntimeAPI(address: address)
        } catch {
            log(failureLine(error))
            return ExitCode.forResponse(status: error.code.status, code: error.code)
        }
        do throws(ClaimError) {
            config = try Config.loadForLambda(environment)
        } catch {
            log(failureLine(error))
            api.reportInitError(Array(JSONWriter.serialize(failure(error).response.object).utf8))
            return ExitCode.forResponse(status: error.code.status, code: error.code)
        }
        let session = Handler.Session(config: config)
        while true {
            do throws(HTTPFailure) {
                let invocation = try api.next()
                let (outcome, answer) = serve(invocation, session: session)
                let status = try api.respond(to: invocation.requestID, with: answer)
                log(outcome.logLine(awsRequestID: invocation.requestID))
                if status != 202 {
                    // Lambda refused the response (too large, an unknown id): the invocation must still end.
                    let refused = "the Runtime API refused the response with HTTP \(status)"
                    log(failureLine(lost(refused), awsRequestID: invocation.requestID))
                    try api.reportInvocationError(invocation.requestID, refused)
                }
            } catch {
                log(failureLine(lost("the Runtime API failed: \(error)")))
                return 74
            }
        }
    }

    /// Handles one invocation with the kept `session`: the outcome for the log, and the bytes to post.
    static func serve(_ invocation: LambdaRuntimeAPI.Invocation, session: Handler.Session)
        -> (Handler.Outcome, [UInt8])
    {
        // Lambda's deadline is wall-clock milliseconds; every wait is measured on the monotonic clock from here.
        let answerBy = invocation.deadlineMs.map { Deadline(ms: Int($0 - Clock.nowMs()) - answerMarginMs) }
        let event = LambdaEvent(invocation.event)
        let outcome: Handler.Outcome
        if let failure = event.failure {
            outcome = LambdaRuntime.failure(failure)
        } else {
            outcome = session.handle(
                event.request, context: RuntimeContext(authorization: event.authorization), answerBy: answerBy)
        }
        return (outcome, event.answer(outcome.response))
    }

    /// The runtime's own failure (`internal`, with what failed as the log's `detail`).
    private static func lost(_ detail: String) -> ClaimError {
        ClaimError(.internal, "the Lambda runtime cannot go on", detail: detail)
    }

    /// The log line of a failure outside any request's handling.
    private static func failureLine(_ error: ClaimError, awsRequestID: String? = nil) -> String {
        failure(error).logLine(awsRequestID: awsRequestID)
    }

    /// An outcome that answers `error` without running the handler.
    private static func failure(_ error: ClaimError) -> Handler.Outcome {
        Handler.Outcome(response: Response(action: nil, requestID: nil, outcome: .failure(error)), durationMs: 0)
    }
}

/// The Runtime API as a custom runtime uses it, over one kept-alive plain HTTP connection.
struct LambdaRuntimeAPI {
    /// One invocation: its id, Lambda's deadline (Unix epoch milliseconds) and the event.
    struct Invocation {
        var requestID: String
        var deadlineMs: Int64?
        var event: [UInt8]
    }

    /// The largest event Lambda delivers: 6 MiB for a synchronous invocation (the emulator allows 100 bytes more).
    static let maxEventBytes = 6 * 1024 * 1024 + 100
    static let root = "/2018-06-01/runtime"
    private let connection: HTTPConnection

    /// - Throws: `misconfigured` when `address` is not `host:port`.
    init(address: String) throws(ClaimError) {
        do throws(HTTPFailure) {
            let target = try URLParts("http://" + address, what: .invalidURL)
            guard target.path == "/" else { throw HTTPFailure(.invalidURL, "a path after host:port") }
            connection = HTTPConnection(target)
        } catch {
            throw ClaimError(
                .misconfigured, "AWS_LAMBDA_RUNTIME_API must be host:port (Lambda sets it)", detail: error.description)
        }
    }

    /// Waits for the next invocation: Lambda freezes the process in this wait, for as long as it likes.
    func next() throws(HTTPFailure) -> Invocation {
        let response = try connection.send(
            "GET", LambdaRuntimeAPI.root + "/invocation/next", deadline: Deadline(ms: 30 * 24 * 3_600_000),
            maxResponseBytes: LambdaRuntimeAPI.maxEventBytes)
        guard response.status == 200 else {
            throw HTTPFailure(.malformed, "invocation/next answered HTTP \(response.status)")
        }
        guard let id = response.header("lambda-runtime-aws-request-id"), !id.isEmpty else {
            throw HTTPFailure(.malformed, "invocation/next answered without Lambda-Runtime-Aws-Request-Id")
        }
        // Unix epoch milliseconds; anything outside 0...2^50 (the year 37,000) is taken as no deadline.
        let deadline = response.header("lambda-runtime-deadline-ms").flatMap { Int64($0) }.flatMap {
            (0...(1 << 50)).contains($0) ? $0 : nil
        }
        return Invocation(requestID: id, deadlineMs: deadline, event: response.body)
    }

    /// Posts an invocation's response; returns the Runtime API's status (202 when accepted).
    func respond(to requestID: String, with body: [UInt8]) throws(HTTPFailure) -> Int {
        try post("/invocation/\(PostgresURL.encode(requestID))/response", body, headers: []).status
    }

    /// Ends an invocation that cannot be answered with a response.
    func reportInvocationError(_ requestID: String, _ message: String) throws(HTTPFailure) {
        let body = JSONWriter.serialize(
            .object([("errorMessage", .string(message)), ("errorType", .string("Runtime.ResponseRefused"))]))
        _ = try post(
            "/invocation/\(PostgresURL.encode(requestID))/error", Array(body.utf8),
            headers: [("Lambda-Runtime-Function-Error-Type", "Runtime.ResponseRefused")])
    }

    /// Reports a configuration refused at start-up, with our error response as the body (best effort: the process
    /// exits next either way, and Lambda reports the exit).
    func reportInitError(_ body: [UInt8]) {
        _ = try? post("/init/error", body, headers: [("Lambda-Runtime-Function-Error-Type", "Runtime.Misconfigured")])
    }

    private func post(_ path: String, _ body: [UInt8], headers: [(String, String)]) throws(HTTPFailure)
        -> HTTPResponse
    {
        try connection.send(
            "POST", LambdaRuntimeAPI.root + path, headers: [("Content-Type", "application/json")] + headers,
            body: body, deadline: Deadline(ms: 10_000), maxResponseBytes: 64 * 1024)
    }
}
