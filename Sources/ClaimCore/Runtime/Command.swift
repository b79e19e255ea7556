#if canImport(Glibc)
import Glibc
#endif

/// What the command line asks for. Function mode takes no argument, so a runtime that starts the binary per
/// request pays one comparison of `argc` for all of this.
public enum Command: Equatable, Sendable {
    /// One request on stdin, one response on stdout.
    case serve
    case migrate
    /// Logs in with CLAIM_DATABASE_URL's password and prints the SCRAM keys that spare later logins the PBKDF2.
    case scramKeys
    case help
    case version
    /// An argument we do not know: usage on stderr, exit `exitUsage`.
    case unknown(String)

    /// EX_USAGE from sysexits.h.
    public static let exitUsage: Int32 = 64

    /// Reads `argv` without building an array of strings (an OpenWhisk argv[1] is the whole parameter object).
    /// Under OpenWhisk's action proxy, which passes the parameters as argv[1] as well as on stdin, an argument
    /// that is not a command means function mode.
    public init(argc: Int32, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, openWhisk: Bool) {
        guard argc > 1, let first = argv[1] else {
            self = .serve
            return
        }
        func equals(_ word: String) -> Bool { strcmp(first, word) == 0 }
        let command: Command?
        if equals("migrate") {
            command = .migrate
        } else if equals("scram-keys") {
            command = .scramKeys
        } else if equals("--help") || equals("-h") {
            command = .help
        } else if equals("--version") {
            command = .version
        } else {
            command = nil
        }
        if let command, argc == 2 {
            self = command
        } else if openWhisk && argc == 2 {
            self = .serve
        } else {
            let unknown = command == nil ? first : argv[2]
            self = .unknown(unknown.map { String(cString: $0) } ?? "")
        }
    }

    /// `--version`'s line.
    public static var versionLine: String { "leetcode-claim \(Handler.version)\n" }

    /// `--help`'s text, and the text after an unknown argument.
    public static let usage = """
        usage: leetcode-claim < request.json    serve one JSON request: the response is one JSON line on stdout,
                                                a log line goes to stderr
               leetcode-claim migrate           create or upgrade the database, print one JSON line
               leetcode-claim scram-keys        log in to PostgreSQL with CLAIM_DATABASE_URL's password and print
                                                the URL parameters that log in without PBKDF2 (a secret: README)
               leetcode-claim --help | --version

        request: {"action": "challenge" | "verify" | "release" | "status", "username": "<LeetCode username>",
                  "user_id": "<caller>" (CLAIM_AUTH=trusted) | "token": "<JWT>" (CLAIM_AUTH=jwt),
                  "request_id": "<optional>"}

        main variables (function.json lists all of them):
          CLAIM_AUTH          trusted | jwt (required)
          CLAIM_DB            SQLite file, default ./data/claims.sqlite
          CLAIM_DATABASE_URL  postgres://user:password@host:port/database (instead of CLAIM_DB)
          CLAIM_VERIFY        leetcode (default: prove through the profile's About me) | off
          CLAIM_JWT_SECRET    HS256 secret, with CLAIM_AUTH=jwt
          CLAIM_EXIT_CODES    sysexits (default) | zero (for runtimes that rewrite a failed process's body)
          AWS_LAMBDA_RUNTIME_API
                              set by AWS Lambda: serve its Runtime API (one process, many invocations)
                              instead of one request on stdin

        exit: 0 status below 500, 75 retry later (503), 78 misconfigured, 70 other 5xx, 74 stdout lost,
              64 usage
        docs: README.md (contract, deployment recipes) and function.json beside the source

        """
}
