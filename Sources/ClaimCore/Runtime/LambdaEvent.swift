/// One event from AWS Lambda, as the handler takes it: the request's bytes, the Authorization headers, and the shape
/// the answer must have. An HTTP event — payload format 2.0 (a Function URL, an HTTP API) or 1.0 (a REST API, an
/// Application Load Balancer, an HTTP API set to 1.0) — carries our request as its `body` and gets an HTTP answer;
/// any other event (a direct Invoke, an SDK, Step Functions) is the request itself and gets our response object.
/// Either way the handler checks the request exactly as it checks stdin.
struct LambdaEvent {
    /// An HTTP event: the answer is `{"statusCode", "headers", "body", "isBase64Encoded"}`.
    var isHTTP = false
    /// What the handler reads: the event itself, or an HTTP event's body (base64-decoded when it says so).
    var request: [UInt8]
    /// An HTTP event's Authorization header values: any case of the name, from `headers` and `multiValueHeaders`.
    var authorization: [String] = []
    /// An HTTP event whose envelope cannot carry a request (its body or a header is not a string, the body is not
    /// the base64 it claims to be): answered 400 `invalid_request` in the HTTP shape, the handler not run.
    var failure: ClaimError?

    /// The most JSON values an event may hold before it is taken as a raw request: an HTTP event has a few hundred
    /// (headers, request context), and the limit bounds what a hostile event can make us build.
    static let maxValues = 16384
    private static let requestContextKey = Array(#""requestContext""#.utf8)

    /// Classifies `event`. Only an object with a `requestContext` can be an HTTP event, so a raw request (the
    /// usual direct invocation) is not parsed twice; anything that does not parse is a raw request too, which the
    /// handler then refuses as it would on stdin (size, JSON, fields, in that order).
    init(_ event: [UInt8]) {
        request = event
        guard event.hasSubsequence(LambdaEvent.requestContextKey),
            let json = try? JSONParser.parse(event, maxValues: LambdaEvent.maxValues),
            LambdaEvent.isHTTPEvent(json)
        else { return }
        isHTTP = true
        request = []
        do throws(ClaimError) {
            (request, authorization) = try LambdaEvent.unwrap(json)
        } catch {
            failure = error
        }
    }

    /// 2.0: `version` "2.0" and `requestContext.http`; 1.0: `httpMethod` beside `requestContext` (REST APIs send no
    /// `version`, an ALB's context holds `elb`). Our request has none of these fields.
    static func isHTTPEvent(_ json: JSON) -> Bool {
        guard case .object? = json["requestContext"] else { return false }
        if json["version"]?.stringValue == "2.0", case .object? = json["requestContext"]?["http"] { return true }
        return json["httpMethod"]?.stringValue != nil
    }

    /// The request bytes and the Authorization headers of an HTTP event.
    /// - Throws: `invalid_request` for an envelope that cannot carry a request.
    static func unwrap(_ event: JSON) throws(ClaimError) -> (body: [UInt8], authorization: [String]) {
        func refuse(_ what: String) -> ClaimError {
            ClaimError(.invalidRequest, "the HTTP event's \(what)")
        }
        var authorization: [String] = []
        for field in ["headers", "multiValueHeaders"] {
            guard let headers = event[field], headers != .null else { continue }
            guard case .object(let members) = headers else { throw refuse("\(field) is not an object") }
            for (name, value) in members where name.utf8.count == 13 && name.lowercased() == "authorization" {
                switch value {
                case .string(let text):
                    authorization.append(text)
                case .array(let values) where field == "multiValueHeaders":
                    for value in values {
                        guard let text = value.stringValue else { throw refuse("\(name) header is not a string") }
                        authorization.append(text)
                    }
                default:
                    throw refuse("\(name) header is not a string")
                }
            }
        }
        let encoded: Bool
        switch event["isBase64Encoded"] {
        case nil, .null?: encoded = false
        case .bool(let flag)?: encoded = flag
        default: throw refuse("isBase64Encoded is not a boolean")
        }
        switch event["body"] {
        case nil, .null?:
            // A request without a body: the handler answers invalid_json, as for empty stdin.
            return ([], authorization)
        case .string(let text)?:
            guard encoded else { return (Array(text.utf8), authorization) }
            // Decoding stops one byte past the limit, as stdin's read does: the handler then answers 413.
            let needed = (Request.maxBytes + 1 + 2) / 3 * 4
            guard let bytes = Base64.decode(Substring(text.utf8.prefix(needed))) else {
                throw refuse("body is not valid base64 (isBase64Encoded is true)")
            }
            return (bytes, authorization)
        default:
            throw refuse("body is not a string")
        }
    }

    /// The invocation's response for `response`: our response object, or for an HTTP event our status, our
    /// headers (JSON's Content-Type, Retry-After when the error says when to come back) and the object as the body.
    func answer(_ response: Response) -> [UInt8] {
        let object = JSONWriter.serialize(response.object)
        guard isHTTP else { return Array(object.utf8) }
        let envelope: JSON = .object([
            ("statusCode", .number(String(response.status))),
            ("headers", response.httpHeaders),
            ("body", .string(object)),
            ("isBase64Encoded", .bool(false)),
        ])
        return Array(JSONWriter.serialize(envelope).utf8)
    }
}
