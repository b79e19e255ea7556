// libFuzzer target (c): the bytes a PostgreSQL server sends -> `MessageReader` (framing, the byte budget per
// answer, `BackendMessage.decode`) -> `AuthenticationStateMachine` for start-up, then `ExtendedQueryStateMachine`
// for one round trip, exactly as `PostgresConnection` drives them from its socket reads, with no socket in between.
// Compiled by Fuzz/run.sh together with every Swift file under Sources/ClaimCore into one module.
//
// Input layout: byte 0 picks the read size for the split replay, byte 1 the `require_auth` methods (its low six
// bits) and byte 2 the number of statements in the round trip (1-4); the rest is what the server sends.
//
// Properties checked besides "does not trap":
//   - the messages decoded, and where decoding fails, do not depend on how the bytes are split into reads;
//   - start-up is ready only after AuthenticationOk, and only after the server's SCRAM signature verified if SCRAM
//     began; a method require_auth forbids is never answered; the password never goes out after SCRAM began;
//   - a round trip is ready only with one result per statement or with an error, never more results than
//     statements;
//   - every failure maps to a store error the contract allows.

let fuzzPassword = "pencil"

/// What the reader made of the bytes: the messages, then the failure that stopped it (if any).
struct FuzzDecoded: Equatable {
    var messages: [BackendMessage] = []
    var failure: PostgresError?
}

/// Decodes `input` read `readSize` bytes at a time; `exchangeEnds` says which message ends an exchange.
func fuzzDecode(_ input: ArraySlice<UInt8>, readSize: Int, exchangeEnds: (BackendMessage) -> Bool) -> FuzzDecoded {
    var reader = MessageReader()
    var decoded = FuzzDecoded()
    var start = input.startIndex
    do throws(PostgresError) {
        while start < input.endIndex {
            let end = min(start + readSize, input.endIndex)
            reader.append(input[start..<end])
            start = end
            while let message = try reader.next() {
                decoded.messages.append(message)
                if exchangeEnds(message) { reader.startExchange() }
            }
        }
    } catch {
        decoded.failure = error
    }
    return decoded
}

func checkStoreError(_ error: PostgresError) {
    let claim = error.claimError(context: "fuzz")
    let allowed: Set<ClaimError.Code> = [.storeUnavailable, .storeBusy, .storeUnreachable]
    precondition(allowed.contains(claim.code), "\(error) gave \(claim)")
    precondition(!claim.message.isEmpty)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func postgresMessageFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 3 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let readSize = Int(bytes[0] % 64) + 1
    let allowed = PostgresURL.AuthMethods(rawValue: bytes[1] & 0x3F)
    let statements = Int(bytes[2] % 4) + 1
    let input = bytes[3...]

    // An exchange ends at a ReadyForQuery, as the connection starts a new one after each.
    let isReady = { (message: BackendMessage) -> Bool in
        if case .readyForQuery = message { return true }
        return false
    }
    let whole = fuzzDecode(input, readSize: max(input.count, 1), exchangeEnds: isReady)
    let split = fuzzDecode(input, readSize: readSize, exchangeEnds: isReady)
    precondition(whole == split, "decoding depends on read size \(readSize)")
    if let failure = whole.failure {
        precondition(failure.kind == .protocolViolation, "reader failed with \(failure)")
        checkStoreError(failure)
    }

    var auth = AuthenticationStateMachine(
        user: "user", password: fuzzPassword, allowed: allowed, nonce: { "fuzznonce" })
    var sawOk = false
    var scramBegan = false
    var verified = false
    var index = 0
    startUp: while index < whole.messages.count {
        let message = whole.messages[index]
        index += 1
        if case .authentication(.ok) = message { sawOk = true }
        let before = auth.state
        switch auth.received(message) {
        case .send(let out):
            if case .saslStarted = auth.state { scramBegan = true }
            if case .authentication(let request) = message {
                switch request {
                case .cleartextPassword:
                    precondition(allowed.contains(.password) && !scramBegan, "cleartext answered")
                    precondition(out == FrontendMessage.password(Array(fuzzPassword.utf8)))
                case .md5Password:
                    precondition(allowed.contains(.md5) && !scramBegan, "MD5 answered")
                case .sasl:
                    precondition(allowed.contains(.scramSHA256), "SCRAM answered")
                default:
                    break
                }
            }
            precondition(!out.isEmpty)
        case .wait:
            if case .saslVerified = auth.state { verified = true }
            if case .authenticated = auth.state, case .awaitingRequest = before {
                precondition(allowed.contains(.none), "trust accepted against require_auth")
            }
        case .ready:
            precondition(sawOk, "ready without AuthenticationOk")
            precondition(!scramBegan || verified, "ready after SCRAM without the server's signature")
            break startUp
        case .fail(let error):
            if case .failed = auth.state {} else { preconditionFailure("failed without the failed state") }
            checkStoreError(error)
            return 0
        }
    }
    guard case .ready = auth.state else { return 0 }

    var query = ExtendedQueryStateMachine(statementCount: statements)
    while index < whole.messages.count {
        let message = whole.messages[index]
        index += 1
        switch query.received(message) {
        case .wait:
            precondition(query.results.count <= statements)
        case .ready:
            precondition(
                query.failure != nil || query.results.count == statements,
                "\(query.results.count) results for \(statements) statements")
            return 0
        case .fail(let error):
            checkStoreError(error)
            return 0
        }
    }
    return 0
}
