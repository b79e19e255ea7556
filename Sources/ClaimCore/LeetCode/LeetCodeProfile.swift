/// The public parts of a LeetCode profile that a claim needs.
public struct LeetCodeProfile: Sendable, Equatable {
    /// As LeetCode spells it.
    public var username: String
    public var realName: String?
    /// "" when empty.
    public var aboutMe: String
    public var avatarURL: String?
    public var ranking: Int?
    /// Accepted problems by difficulty; nil when LeetCode did not say.
    public var solvedAll: Int?
    public var solvedEasy: Int?
    public var solvedMedium: Int?
    public var solvedHard: Int?

    public init(
        username: String, realName: String? = nil, aboutMe: String, avatarURL: String? = nil, ranking: Int? = nil,
        solvedAll: Int? = nil, solvedEasy: Int? = nil, solvedMedium: Int? = nil, solvedHard: Int? = nil
    ) {
        self.username = username
        self.realName = realName
        self.aboutMe = aboutMe
        self.avatarURL = avatarURL
        self.ranking = ranking
        self.solvedAll = solvedAll
        self.solvedEasy = solvedEasy
        self.solvedMedium = solvedMedium
        self.solvedHard = solvedHard
    }
}
