import Glibc
import Testing

@testable import ClaimCore

@Suite struct ClockTests {
    /// The reference: libc's gmtime_r, which the hand-written conversion replaces.
    static func reference(ms: Int64) -> String {
        var seconds = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return pad(Int(parts.tm_year) + 1900, 4) + "-" + pad(Int(parts.tm_mon) + 1, 2) + "-"
            + pad(Int(parts.tm_mday), 2)
            + "T" + pad(Int(parts.tm_hour), 2) + ":" + pad(Int(parts.tm_min), 2) + ":" + pad(Int(parts.tm_sec), 2)
            + "." + pad(Int(ms % 1000), 3) + "Z"
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (1_795_996_741_123, "2026-11-29T23:59:01.123Z"),
        (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ])
    func knownInstants(ms: Int64, text: String) {
        #expect(Clock.rfc3339(ms: ms) == text)
    }

    @Test func agreesWithGmtimeAcrossCenturies() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let ms = Int64.random(in: 0...13_000_000_000_000, using: &rng)
            #expect(Clock.rfc3339(ms: ms) == ClockTests.reference(ms: ms), "ms \(ms)")
        }
    }

    @Test func parsingInvertsFormatting() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let ms = Int64.random(in: 0...253_402_300_799_999, using: &rng)
            #expect(Clock.ms(rfc3339: Clock.rfc3339(ms: ms)) == ms, "ms \(ms)")
        }
        #expect(Clock.ms(rfc3339: "2000-02-29T00:00:00.000Z") == 951_782_400_000)
    }

    @Test(arguments: [
        "", "2026-11-29T23:59:01.123", "2026-11-29 23:59:01.123Z", "2026-13-01T00:00:00.000Z",
        "2026-11-29T24:00:00.000Z", "2026-11-29T23:60:00.000Z", "2026-11-00T00:00:00.000Z", "2026-1x-29T23:59:01.123Z",
        "+026-11-29T23:59:01.123Z", "2026-11-29T23:59:01.123Z ",
    ])
    func parsingRefusesOtherText(text: String) {
        #expect(Clock.ms(rfc3339: text) == nil)
    }
}
