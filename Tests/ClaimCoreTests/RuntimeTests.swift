import Testing

@testable import ClaimCore

#if canImport(Glibc)
import Glibc
#endif

/// `Command` over a real C argv built from `arguments` (argv[0] is the program).
private func command(_ arguments: [String], openWhisk: Bool = false) -> Command {
    let argv = (["leetcode-claim"] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pointers = argv
    return pointers.withUnsafeMutableBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return .unknown("no argv") }
        return Command(argc: Int32(arguments.count + 1), argv: base, openWhisk: openWhisk)
    }
}

/// The response and the line stdout carries for `request` with `context`, in a fresh temporary database.
private func handle(
    _ request: String, context: RuntimeContext, _ environment: [String: String] = [:]
) throws -> (outcome: Handler.Outcome, stdout: JSON) {
    try withTemporaryFolder { folder in
        var env = ["CLAIM_AUTH": "trusted", "CLAIM_VERIFY": "off", "CLAIM_DB": folder + "/db/claims.sqlite"]
        env.merge(environment) { $1 }
        let outcome = Handler.handle(input: Array(request.utf8), context: context, environment: { env[$0] })
        let line = outcome.line
        #expect(line.hasSuffix("\n") && line.utf8.filter { $0 == UInt8(ascii: "\n") }.count == 1)
        return (outcome, try JSONParser.parse(Array(line.utf8)))
    }
}

private let secret = String(repeating: "s", count: JWTVerifier.minSecretBytes)
private let jwtEnvironment = ["CLAIM_AUTH": "jwt", "CLAIM_JWT_SECRET": secret]

/// An HS256 token for `sub`, valid for an hour (signed through JWTTests' libcrypto minting).
private func token(sub: String = "user-1") -> String {
    let now = Clock.nowMs() / 1000
    return JWTTests.Mint.token(
        payload: #"{"aud":"authenticated","exp":\#(now + 3600),"iat":\#(now - 5),"sub":"\#(sub)"}"#, secret: secret)
}

@Suite struct CommandTests {
    @Test func noArgumentServesAndKnownWordsAreCommands() {
        #expect(command([]) == .serve)
        #expect(command(["migrate"]) == .migrate)
        #expect(command(["--help"]) == .help)
        #expect(command(["-h"]) == .help)
        #expect(command(["--version"]) == .version)
    }

    @Test(arguments: [["serve"], ["--verbose"], ["{\"action\":\"status\"}"], ["-"], [""]])
    func anyOtherArgumentIsAUsageError(arguments: [String]) {
        #expect(command(arguments) == .unknown(arguments[0]))
    }

    @Test func aCommandTakesNoFurtherArgument() {
        #expect(command(["migrate", "now"]) == .unknown("now"))
        #expect(command(["--help", "x"]) == .unknown("x"))
    }

    @Test func underOpenWhiskTheParametersInArgv1MeanServe() {
        #expect(command(["{\"action\":\"status\",\"username\":\"a\"}"], openWhisk: true) == .serve)
        #expect(command(["anything"], openWhisk: true) == .serve)
        #expect(command(["--version"], openWhisk: true) == .version)
        #expect(command(["{}", "extra"], openWhisk: true) == .unknown("{}"))
    }

    @Test func usageNamesTheCommandsAndTheMainVariables() {
        for word in ["migrate", "--help", "--version", "CLAIM_AUTH", "CLAIM_DB", "CLAIM_EXIT_CODES", "README.md"] {
            #expect(Command.usage.contains(word), "usage lacks \(word)")
        }
        #expect(Command.versionLine == "leetcode-claim \(Handler.version)\n")
    }
}

@Suite struct RuntimeContextTests {
    @Test func readsTheRuntimesHeaderVariablesAndOpenWhisksMarker() {
        let env = [
            "Http_Authorization": "Bearer a", "FN_HTTP_H_AUTHORIZATION": "Bearer b", "__OW_ACTION_NAME": "/ns/claim",
        ]
        let context = Config.runtimeContext { env[$0] }
        #expect(context.authorization == ["Bearer a", "Bearer b"])
        #expect(context.openWhisk)
        let empty = ["Http_Authorization": "", "FN_HTTP_H_AUTHORIZATION": "", "__OW_ACTION_NAME": ""]
        let none = Config.runtimeContext { empty[$0] }
        #expect(none.authorization.isEmpty)
        #expect(!none.openWhisk)
    }

    @Test func exitCodesDefaultToSysexitsAndAWrongValueIsMisconfigured() throws {
        #expect(Config.exitCodes { _ in nil } == .sysexits)
        #expect(Config.exitCodes { $0 == "CLAIM_EXIT_CODES" ? "" : nil } == .sysexits)
        #expect(Config.exitCodes { $0 == "CLAIM_EXIT_CODES" ? "zero" : nil } == .zero)
        #expect(Config.exitCodes { $0 == "CLAIM_EXIT_CODES" ? "0" : nil } == nil)
        let env = ["CLAIM_AUTH": "trusted", "CLAIM_EXIT_CODES": "none"]
        let error = try #require(throws: ClaimError.self) { _ = try Config.load { env[$0] } }
        #expect(error.code == .misconfigured)
        #expect(error.message == "CLAIM_EXIT_CODES must be one of: sysexits, zero")
    }
}

@Suite struct OpenWhiskTests {
    static let webParameters = """
        {"action":"status","username":"alice","user_id":"u-1","__ow_method":"post",
        "__ow_headers":{"content-type":"application/json","accept":"*/*"},"__ow_path":""}
        """

    @Test func runtimeFieldsAreUnknownOutsideOpenWhisk() throws {
        let (outcome, stdout) = try handle(Self.webParameters, context: RuntimeContext())
        #expect(!outcome.openWhiskWebAction)
        #expect(stdout["status"] == .number("400"))
        #expect(stdout["error"]?["code"] == .string("invalid_request"))
        #expect(stdout["error"]?["message"] == .string(#"unknown field "__ow_method""#))
    }

    @Test func aWebActionsResultCarriesOurStatusHeadersAndBody() throws {
        let (outcome, stdout) = try handle(Self.webParameters, context: RuntimeContext(openWhisk: true))
        #expect(outcome.openWhiskWebAction)
        #expect(outcome.response.status == 200)
        #expect(
            stdout
                == .object([
                    ("statusCode", .number("200")),
                    ("headers", .object([("content-type", .string("application/json"))])),
                    ("body", outcome.response.object),
                ]))
    }

    @Test func aPlainActionsResultIsOurResponse() throws {
        let plain = #"{"action":"status","username":"alice","user_id":"u-1"}"#
        let (outcome, stdout) = try handle(plain, context: RuntimeContext(openWhisk: true))
        #expect(!outcome.openWhiskWebAction)
        #expect(stdout == outcome.response.object)
        #expect(stdout["status"] == .number("200"))
    }

    @Test func aRefusedWebRequestStillGetsItsStatus() throws {
        let parameters = #"{"action":"status","__ow_method":"post","__ow_headers":{}}"#
        let (_, stdout) = try handle(parameters, context: RuntimeContext(openWhisk: true))
        #expect(stdout["statusCode"] == .number("400"))
        #expect(stdout["body"]?["error"]?["code"] == .string("invalid_request"))
    }

    @Test func a503CarriesRetryAfter() {
        let response = Response(
            action: .verify, requestID: nil, outcome: .failure(ClaimError(.storeBusy, "busy", retryAfterSeconds: 1)))
        let result = try? JSONParser.parse(Array(OpenWhisk.webActionResult(response).utf8))
        #expect(result?["statusCode"] == .number("503"))
        #expect(
            result?["headers"]
                == .object([("content-type", .string("application/json")), ("Retry-After", .string("1"))]))
        #expect(result?["body"] == response.object)
    }

    @Test(arguments: [
        (#""__ow_headers":"authorization: Bearer x""#, #"field "__ow_headers" must be an object, not string"#),
        (#""__ow_headers":{"authorization":["Bearer x"]}"#, #"field "__ow_headers.authorization" must be a string"#),
    ])
    func malformedRuntimeHeadersAreInvalidRequests(member: String, message: String) throws {
        let object = try Request.parseObject(Array(#"{"action":"status","username":"a",\#(member)}"#.utf8))
        let error = try #require(throws: ClaimError.self) { _ = try Request(object, openWhisk: true) }
        #expect(error.code == .invalidRequest)
        #expect(error.message == message)
    }

    @Test func aWebActionsAuthorizationHeaderCarriesTheToken() throws {
        let parameters = #"""
            {"action":"verify","username":"alice","__ow_method":"post","__ow_headers":{"authorization":"Bearer \#(token())"}}
            """#
        let (outcome, stdout) = try handle(parameters, context: RuntimeContext(openWhisk: true), jwtEnvironment)
        #expect(outcome.response.status == 200)
        #expect(stdout["body"]?["result"]?["claimed_by"] == .string("user-1"))
    }
}

@Suite struct HeaderSourceTests {
    static let verify = #"{"action":"verify","username":"alice"}"#

    @Test func theRuntimesHeaderCarriesTheToken() throws {
        let context = RuntimeContext(authorization: ["Bearer " + token()])
        let (outcome, _) = try handle(Self.verify, context: context, jwtEnvironment)
        #expect(outcome.response.status == 200)
    }

    @Test func headersThatDisagreeAreAnInvalidRequest() throws {
        let context = RuntimeContext(authorization: ["Bearer " + token(), "Bearer " + token(sub: "user-2")])
        let (outcome, stdout) = try handle(Self.verify, context: context, jwtEnvironment)
        #expect(outcome.response.status == 400)
        #expect(
            stdout["error"]?["message"] == .string("the runtime passed on Authorization headers with different tokens"))
    }

    @Test func theTokenFieldAndAWebActionsHeaderMustAgree() throws {
        let parameters = #"""
            {"action":"verify","username":"alice","token":"\#(token())","__ow_method":"post",
            "__ow_headers":{"authorization":"Bearer \#(token(sub: "user-2"))"}}
            """#
        let (_, stdout) = try handle(parameters, context: RuntimeContext(openWhisk: true), jwtEnvironment)
        #expect(stdout["statusCode"] == .number("400"))
        #expect(
            stdout["body"]?["error"]?["message"]
                == .string("the token field and the Authorization header carry different tokens"))
    }

    @Test func sameTokenEverywhereIsAccepted() throws {
        let shared = token()
        let context = RuntimeContext(authorization: ["Bearer " + shared, "bearer " + shared])
        let request = #"{"action":"verify","username":"alice","token":"\#(shared)"}"#
        let (outcome, _) = try handle(request, context: context, jwtEnvironment)
        #expect(outcome.response.status == 200)
    }

    @Test func trustedModeIgnoresHeaders() throws {
        let context = RuntimeContext(authorization: ["Basic dXNlcjpwYXNz"])
        let request = #"{"action":"status","username":"alice","user_id":"u-1"}"#
        let (outcome, _) = try handle(request, context: context)
        #expect(outcome.response.status == 200)
    }
}
