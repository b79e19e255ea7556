// libFuzzer target (b): the bytes an HTTP peer sends -> `ResponseParser` (status line, headers, Content-Length /
// chunked / read-to-close bodies, interim 1xx responses) -> what LeetCodeClient makes of the response. Compiled by
// Fuzz/run.sh together with every Swift file under Sources/ClaimCore into one module: `ResponseParser` is internal,
// so it is fed directly, exactly as `HTTPClient.post` feeds it from its socket reads, with no socket in between.
//
// Input layout: byte 0 picks the body cap, byte 1 the read size for the split replay, the rest is what the peer
// sends before closing the connection.
//
// Properties checked besides "does not trap":
//   - the result does not depend on how the bytes are split into reads (all at once vs. many small reads);
//   - a parsed body is never larger than the cap; the status is a final one (200-999); header names are lowercase;
//   - every outcome maps to a ClaimError the contract allows for a LeetCode exchange.

let bodyCaps = [0, 1, 16, 256, 4096]

/// A comparable summary of one parse.
enum ParseOutcome: Equatable {
    case response(status: Int, headers: [String], body: [UInt8])
    case failure(HTTPFailure.Kind)
}

func parse(_ input: ArraySlice<UInt8>, maxBody: Int, readSize: Int) -> (ParseOutcome, HTTPResponse?, HTTPFailure?) {
    var parser = ResponseParser(maxBody: maxBody)
    do throws(HTTPFailure) {
        var start = input.startIndex
        var response: HTTPResponse?
        while start < input.endIndex, response == nil {
            let end = min(start + readSize, input.endIndex)
            response = try parser.feed(input[start..<end])
            start = end
        }
        let final: HTTPResponse
        if let response { final = response } else { final = try parser.finish() }
        let summary = ParseOutcome.response(
            status: final.status, headers: final.headers.map { "\($0.0): \($0.1)" }, body: final.body)
        return (summary, final, nil)
    } catch {
        return (.failure(error.kind), nil, error)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func httpResponseFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 2 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let maxBody = bodyCaps[Int(bytes[0]) % bodyCaps.count]
    let readSize = Int(bytes[1] % 32) + 1
    let input = bytes[2...]

    let (whole, response, failure) = parse(input, maxBody: maxBody, readSize: max(input.count, 1))
    let (split, _, _) = parse(input, maxBody: maxBody, readSize: readSize)
    precondition(whole == split, "result depends on read size \(readSize): \(whole) vs \(split)")

    if let response {
        precondition(response.body.count <= maxBody, "body of \(response.body.count) bytes over the cap \(maxBody)")
        precondition((200...999).contains(response.status), "status \(response.status) returned")
        for (name, _) in response.headers { precondition(name == name.lowercased(), "header name \(name)") }
        if (200..<300).contains(response.status) {
            do throws(ClaimError) {
                _ = try LeetCodeClient.profile(from: response.body, username: "alice")
            } catch {
                let allowed: Set<ClaimError.Code> = [.leetcodeBadResponse, .leetcodeUserNotFound]
                precondition(allowed.contains(error.code), "profile(from:) threw \(error)")
            }
        } else {
            let error = LeetCodeClient.claimError(for: response)
            let allowed: Set<ClaimError.Code> = [.leetcodeRateLimited, .leetcodeUnavailable]
            precondition(allowed.contains(error.code), "claimError(for: response) gave \(error)")
            if let retry = error.retryAfterSeconds { precondition((1...3600).contains(retry), "retry_after \(retry)") }
        }
    }
    if let failure {
        let error = LeetCodeClient.claimError(for: failure)
        let allowed: Set<ClaimError.Code> = [.leetcodeBadResponse, .leetcodeUnavailable]
        precondition(allowed.contains(error.code), "claimError(for: \(failure)) gave \(error)")
    }
    return 0
}
