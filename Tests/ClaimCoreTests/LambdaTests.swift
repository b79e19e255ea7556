import Foundation
import Testing

@testable import ClaimCore

/// The JSON text of `value` as bytes (JSONSerialization: the test's own writer, not ours).
private func bytes(_ value: Any) throws -> [UInt8] {
    [UInt8](try JSONSerialization.data(withJSONObject: value))
}

private let request = #"{"action":"status","username":"alice","user_id":"u1"}"#

/// A payload format 2.0 event (Function URL) carrying `body`.
private func functionURL(body: Any?, base64: Any = false, headers: Any = ["content-type": "application/json"])
    throws -> [UInt8]
{
    var event: [String: Any] = [
        "version": "2.0", "rawPath": "/", "headers": headers, "isBase64Encoded": base64,
        "requestContext": ["http": ["method": "POST", "path": "/"], "requestId": "r"],
    ]
    if let body { event["body"] = body }
    return try bytes(event)
}

@Suite struct LambdaEventTests {
    @Test func aRequestObjectIsTheRequestItself() throws {
        let event = LambdaEvent(Array(request.utf8))
        #expect(!event.isHTTP && event.request == Array(request.utf8) && event.failure == nil)
    }

    @Test(arguments: [
        #"{"Records":[{"eventSource":"aws:s3"}]}"#, #"{"requestContext":{},"body":"{}"}"#,
        #"{"version":"2.0","requestContext":{"elb":{}},"body":"{}"}"#, #"{"httpMethod":"POST","requestContext":[]}"#,
        #"{"requestContext": {"http": {}}, "version": "2.0", "version": "2.0"}"#, "[1,2]", "not json",
    ])
    func anythingElseIsHandedOverAsItCame(text: String) {
        let event = LambdaEvent(Array(text.utf8))
        #expect(!event.isHTTP && event.request == Array(text.utf8))
    }

    @Test func payloadFormat2BodyAndLowerCaseAuthorization() throws {
        let event = LambdaEvent(try functionURL(body: request, headers: ["authorization": "Bearer t"]))
        #expect(event.isHTTP && event.failure == nil)
        #expect(event.request == Array(request.utf8) && event.authorization == ["Bearer t"])
    }

    @Test func payloadFormat1HeadersInAnyCaseAndMultiValueHeaders() throws {
        let event = LambdaEvent(
            try bytes([
                "httpMethod": "POST", "requestContext": ["resourceId": "x"], "body": request,
                "headers": ["AUTHORIZATION": "Bearer a", "Host": "h"],
                "multiValueHeaders": ["Authorization": ["Bearer a", "Bearer b"]],
            ]))
        #expect(event.isHTTP && event.request == Array(request.utf8))
        #expect(event.authorization == ["Bearer a", "Bearer a", "Bearer b"])
    }

    @Test func base64BodyIsDecoded() throws {
        let encoded = Data(request.utf8).base64EncodedString()
        let event = LambdaEvent(try functionURL(body: encoded, base64: true))
        #expect(event.request == Array(request.utf8))
    }

    @Test func aBase64BodyIsDecodedOnlyOnePastTheLimit() throws {
        let big = Data(repeating: 0x41, count: 200_000).base64EncodedString()
        let event = LambdaEvent(try functionURL(body: big, base64: true))
        #expect(event.request.count > Request.maxBytes && event.request.count <= Request.maxBytes + 3)
    }

    @Test func noBodyIsAnEmptyRequest() throws {
        let event = LambdaEvent(try functionURL(body: nil))
        #expect(event.isHTTP && event.request.isEmpty && event.failure == nil)
    }

    @Test(arguments: [
        (try functionURL(body: 42), "body is not a string"),
        (try functionURL(body: "%%%", base64: true), "not valid base64"),
        (try functionURL(body: request, base64: "true"), "isBase64Encoded is not a boolean"),
        (try functionURL(body: request, headers: ["authorization": ["Bearer t"]]), "header is not a string"),
        (try functionURL(body: request, headers: "authorization"), "headers is not an object"),
    ])
    func anEnvelopeThatCannotCarryARequestIsInvalidRequest(event: [UInt8], reason: String) throws {
        let failure = try #require(LambdaEvent(event).failure)
        #expect(failure.code == .invalidRequest && failure.message.hasSubstring(reason))
    }

    @Test func theAnswerIsOurObjectOrTheHTTPEnvelope() throws {
        let busy = Response(
            action: .verify, requestID: "r", outcome: .failure(StoreFailure.busy.error(detail: "test")))
        #expect(LambdaEvent(Array(request.utf8)).answer(busy) == Array(JSONWriter.serialize(busy.object).utf8))
        let answer = try JSONParser.parse(LambdaEvent(try functionURL(body: request)).answer(busy))
        #expect(answer["statusCode"] == .number("503") && answer["isBase64Encoded"] == .bool(false))
        #expect(
            answer["headers"]
                == .object([("content-type", .string("application/json")), ("Retry-After", .string("1"))]))
        #expect(answer["body"] == .string(JSONWriter.serialize(busy.object)))
    }
}

@Suite struct LambdaDeadlineTests {
    @Test func aWaitGetsAtMostThreeQuartersOfTheTimeLeft() {
        let deadline = Deadline(ms: 1000)
        // Bounded by what was left just before, not by wall-clock time: a loaded machine may pause in between.
        let left = Int(deadline.remainingMs)
        let capped = deadline.capping(5000)
        #expect(capped <= left * 3 / 4 && capped <= 750)
        #expect(deadline.capping(100) == 100)
        #expect(Deadline(ms: 0).capping(5000) == 0)
        #expect(Deadline(ms: 5000, answerBy: Deadline(ms: 200)).remainingMs <= 200)
        #expect(Deadline(ms: 200, answerBy: nil).remainingMs <= 200)
    }

    @Test func configWaitsFollowTheAnswerBy() throws {
        var config = try Config.load { ["CLAIM_AUTH": "trusted"][$0] }
        #expect(config.waitMs(config.leetcodeTimeoutMs) == 5000)
        config.answerBy = Deadline(ms: 400)
        #expect(config.waitMs(config.leetcodeTimeoutMs) <= 300)
    }

    @Test func onLambdaSQLiteNeedsAnExplicitFile() throws {
        let error = try #require(throws: ClaimError.self) {
            _ = try Config.loadForLambda { ["CLAIM_AUTH": "trusted"][$0] }
        }
        #expect(error.code == .misconfigured && error.message.hasPrefix("CLAIM_DATABASE_URL is not set"))
        let file = try Config.loadForLambda { ["CLAIM_AUTH": "trusted", "CLAIM_DB": "/tmp/x.sqlite"][$0] }
        #expect(file.databasePath == "/tmp/x.sqlite")
        let server = try Config.loadForLambda {
            ["CLAIM_AUTH": "trusted", "CLAIM_DATABASE_URL": "postgres://u@h/d"][$0]
        }
        #expect(server.databaseURL?.host == "h")
    }
}

@Suite struct LambdaSessionTests {
    @Test func theStoreIsOpenedOnceAndEachInvocationStandsAlone() throws {
        try withTemporaryFolder { folder in
            let config = try Config.load {
                ["CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off", "CLAIM_DB": folder + "/db/claims.sqlite"][$0]
            }
            let session = Handler.Session(config: config)
            // Opened before any invocation: the file and its schema are there.
            #expect(FileManager.default.fileExists(atPath: folder + "/db/claims.sqlite"))
            let first = session.handle(
                Array(#"{"action":"verify","username":"alice","user_id":"u1","request_id":"a"}"#.utf8),
                context: RuntimeContext(), answerBy: Deadline(ms: 10_000))
            #expect(first.response.status == 200 && first.response.requestID == "a")
            let second = session.handle(
                Array(#"{"action":"status","username":"alice"}"#.utf8), context: RuntimeContext(), answerBy: nil)
            #expect(second.response.status == 401 && second.response.requestID == nil)
            let third = session.handle(
                Array(#"{"action":"status","username":"alice","user_id":"u1"}"#.utf8), context: RuntimeContext(),
                answerBy: Deadline(ms: 10_000))
            #expect(third.response.status == 200)
        }
    }

    @Test func anHTTPEnvelopeFailureIsAnsweredWithoutTheHandler() throws {
        try withTemporaryFolder { folder in
            let config = try Config.load {
                ["CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off", "CLAIM_DB": folder + "/claims.sqlite"][$0]
            }
            let invocation = LambdaRuntimeAPI.Invocation(
                requestID: "id", deadlineMs: Clock.nowMs() + 5000, event: try functionURL(body: 7))
            let (outcome, answer) = LambdaRuntime.serve(invocation, session: Handler.Session(config: config))
            #expect(outcome.response.status == 400)
            #expect(try JSONParser.parse(answer)["statusCode"] == .number("400"))
        }
    }
}
