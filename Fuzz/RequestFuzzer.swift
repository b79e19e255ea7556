// libFuzzer target (a): stdin bytes -> validated, authenticated Request, the path `Handler.handle` takes before it
// touches the database. Compiled by Fuzz/run.sh together with every Swift file under Sources/ClaimCore into one
// module, so internal declarations are visible; nothing here opens a file or a socket.
//
// Besides "does not trap", it checks properties any input must keep:
//   - only payload_too_large / invalid_json come out of parseObject, only invalid_request / invalid_username out of
//     Request.init, only unauthenticated / invalid_request out of authenticate;
//   - JSONWriter and JSONParser round-trip every accepted value;
//   - an accepted username is valid and normalizing it again changes nothing; an accepted user id is valid;
//   - the response line is one line of valid JSON;
//   - with OpenWhisk's `__ow_*` fields allowed the same errors hold, a request without them decodes the same, and
//     a web action's result is one line of valid JSON;
//   - taken as an AWS Lambda event, the bytes are either the request itself or an HTTP event whose request is at
//     most one byte past the size limit (base64 decoding stops there) or whose envelope is refused as
//     invalid_request, and the answer in either shape is one valid JSON object (the HTTP one with our status).

/// The JWT secret and a token signed with it (sub "fuzz-user", exp 9999-12-31) are in the seed corpus, so the
/// fuzzer starts from requests that get past authentication.
let fuzzSecret = "fuzz-secret-0123456789abcdefghijklmnop"

func fuzzConfig(_ auth: String) -> Config {
    let environment = ["CLAIM_AUTH": auth, "CLAIM_VERIFY": "off", "CLAIM_JWT_SECRET": fuzzSecret]
    do {
        return try Config.load { environment[$0] }
    } catch {
        fatalError("fuzz configuration rejected: \(error)")
    }
}

let trustedConfig = fuzzConfig("trusted")
let jwtConfig = fuzzConfig("jwt")

/// Traps unless `text` is exactly one line holding one JSON object.
func requireOneJSONLine(_ text: String, _ what: String) {
    let bytes = Array(text.utf8)
    guard bytes.last == 0x0A, bytes.dropLast().firstIndex(of: 0x0A) == nil else {
        fatalError("\(what) is not exactly one line: \(text)")
    }
    guard case .object? = try? JSONParser.parse(Array(bytes.dropLast())) else {
        fatalError("\(what) is not a JSON object: \(text)")
    }
}

func checkRequest(_ bytes: [UInt8]) {
    var response = Response(action: nil, requestID: nil, outcome: .failure(ClaimError(.internal, "unreached")))
    defer { requireOneJSONLine(response.line, "response line") }
    let object: JSON
    do throws(ClaimError) {
        object = try Request.parseObject(bytes)
    } catch {
        precondition(error.code == .payloadTooLarge || error.code == .invalidJSON, "parseObject threw \(error)")
        precondition((error.code == .payloadTooLarge) == (bytes.count > Request.maxBytes), "size check: \(error)")
        response.outcome = .failure(error)
        return
    }
    let text = JSONWriter.serialize(object)
    guard let again = try? JSONParser.parse(Array(text.utf8)), again == object else {
        fatalError("JSONWriter output does not parse back to the same value: \(text)")
    }
    (response.action, response.requestID) = Request.echo(from: object)
    if let id = response.requestID { precondition(id.unicodeScalars.count <= 128, "echoed a long request_id") }

    // Under OpenWhisk's proxy `__ow_*` fields are the runtime's: only they may decode differently.
    var openWhisk: Request?
    do throws(ClaimError) {
        openWhisk = try Request(object, openWhisk: true)
    } catch {
        precondition(
            error.code == .invalidRequest || error.code == .invalidUsername, "OpenWhisk Request threw \(error)")
    }
    if let openWhisk {
        do throws(ClaimError) {
            let caller = try Handler.authenticate(
                openWhisk, context: RuntimeContext(openWhisk: true), config: jwtConfig)
            precondition(Request.isValidUserID(caller), "authenticated an invalid user id \(caller)")
        } catch {
            precondition(error.code == .unauthenticated || error.code == .invalidRequest, "authenticate threw \(error)")
        }
    }
    requireOneJSONLine(OpenWhisk.webActionResult(response), "web action result")

    let request: Request
    do throws(ClaimError) {
        request = try Request(object)
    } catch {
        precondition(error.code == .invalidRequest || error.code == .invalidUsername, "Request.init threw \(error)")
        response.outcome = .failure(error)
        return
    }
    precondition(Request.isValidUsername(request.username), "accepted username \(request.username)")
    precondition(Request.normalizeUsername(request.username) == request.username, "normalization not idempotent")
    precondition(response.action == request.action, "echoed action differs from the request's")
    precondition(
        openWhisk?.username == request.username && openWhisk?.token == request.token
            && openWhisk?.userID == request.userID && openWhisk?.headerAuthorization == nil,
        "a request without __ow_ fields decodes differently under OpenWhisk")

    for config in [trustedConfig, jwtConfig] {
        do throws(ClaimError) {
            let caller = try Handler.authenticate(request, config: config)
            precondition(Request.isValidUserID(caller), "authenticated an invalid user id \(caller)")
            if config.auth == .trusted { precondition(caller == request.userID, "trusted caller is not user_id") }
            response.outcome = .success(.object([("caller", .string(caller))]))
        } catch {
            precondition(
                error.code == .unauthenticated || error.code == .invalidRequest, "authenticate threw \(error)")
            response.outcome = .failure(error)
        }
        if let token = request.token {
            // The message must never repeat the token (README: never a token in a response or the log).
            if token.utf8.count >= 8, case .failure(let error) = response.outcome {
                precondition(!error.message.contains(token), "the error message repeats the token")
            }
        }
    }
}

/// The bytes as a Lambda event (LambdaEvent): classification and both answer shapes.
func checkLambdaEvent(_ bytes: [UInt8]) {
    let event = LambdaEvent(bytes)
    if !event.isHTTP {
        precondition(event.request == bytes && event.authorization.isEmpty && event.failure == nil, "raw event")
    } else if let failure = event.failure {
        precondition(failure.code == .invalidRequest, "an HTTP envelope was refused with \(failure)")
    } else {
        if case .object(let members)? = try? JSONParser.parse(bytes), members.contains(where: { $0.0 == "body" }),
            case .bool(true)? = try? JSONParser.parse(bytes)["isBase64Encoded"]
        {
            precondition(event.request.count <= Request.maxBytes + 3, "decoded past the size limit")
        }
    }
    let response = Response(
        action: .status, requestID: nil, outcome: .failure(StoreFailure.busy.error(detail: "fuzz")))
    guard case .object = try? JSONParser.parse(event.answer(response)) else {
        fatalError("the Lambda answer is not a JSON object")
    }
    if event.isHTTP {
        let answer = try? JSONParser.parse(event.answer(response))
        precondition(answer?["statusCode"] == .number("503"), "the HTTP answer does not carry our status")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func requestFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    checkRequest(bytes)
    checkLambdaEvent(bytes)
    return 0
}
