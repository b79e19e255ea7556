/// What the runtime delivered besides the request body: the handler's input next to the bytes. In stdin mode
/// `Config.runtimeContext` reads it from the environment the runtime set for this process; a runtime loop that
/// receives events builds it from each event.
public struct RuntimeContext: Sendable {
    /// The HTTP request's Authorization header as the runtime passed it on, normally once (OpenFaaS's
    /// `Http_Authorization`, Fn's `FN_HTTP_H_AUTHORIZATION`). Jwt mode takes the bearer token from it; values
    /// that disagree with each other or with the `token` field are `invalid_request`.
    public var authorization: [String]
    /// True under OpenWhisk's action proxy: parameters named `__ow_*` belong to the runtime (and a web action's
    /// `__ow_headers.authorization` carries the header); everywhere else they are unknown fields.
    public var openWhisk: Bool

    public init(authorization: [String] = [], openWhisk: Bool = false) {
        self.authorization = authorization
        self.openWhisk = openWhisk
    }
}
