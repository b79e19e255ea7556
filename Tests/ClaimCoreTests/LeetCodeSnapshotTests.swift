import Testing

@testable import ClaimCore

/// What the snapshot keeps of LeetCode's numbers and text: what both backends can store alike.
@Suite struct LeetCodeSnapshotTests {
    static func body(ranking: String, realName: String) -> [UInt8] {
        Array(
            """
            {"data":{"matchedUser":{"username":"alice","profile":{"realName":\(realName),"aboutMe":"LCC-X",
            "userAvatar":"https://a/\\u0000x.png","ranking":\(ranking)},"submitStatsGlobal":{"acSubmissionNum":[
            {"difficulty":"All","count":3000000000},{"difficulty":"Easy","count":7}]}}}}
            """.utf8)
    }

    @Test(arguments: [
        ("2147483647", 2_147_483_647 as Int?), ("2147483648", nil), ("3000000000", nil), ("-1", nil), ("12.5", nil),
        ("0", 0),
    ])
    func rankingOutsideA32BitCountIsUnknown(ranking: String, stored: Int?) throws {
        let profile = try LeetCodeClient.profile(from: Self.body(ranking: ranking, realName: "\"A\""), username: "alice")
        #expect(profile.ranking == stored)
        #expect(profile.solvedAll == nil)
        #expect(profile.solvedEasy == 7)
    }

    @Test func textLosesItsNULs() throws {
        let profile = try LeetCodeClient.profile(
            from: Self.body(ranking: "1", realName: "\"Al\\u0000ice\""), username: "alice")
        #expect(profile.realName == "Alice")
        #expect(profile.avatarURL == "https://a/x.png")
        #expect(profile.aboutMe == "LCC-X")
    }
}
