import ClaimCore

#if canImport(Glibc)
import Glibc
#endif

/// Replaces the runtime's lookup of auxiliary executables (only `swift-backtrace`), linked with `--wrap`: a
/// function process never spawns a backtracer, and the lookup needs /proc, which a scratch image may lack.
@_cdecl("__wrap_swift_copyAuxiliaryExecutablePath")
func noAuxiliaryExecutable(_ name: UnsafePointer<CChar>?) -> UnsafeMutablePointer<CChar>? { nil }

// A reader that went away must not kill us with SIGPIPE before the exit code is set; write() reports EPIPE.
signal(SIGPIPE, SIG_IGN)
// A file-size limit (RLIMIT_FSIZE) must fail the write, which SQLite reports, rather than kill the process.
signal(SIGXFSZ, SIG_IGN)

/// EX_IOERR: the response could not be written to stdout (closed, broken pipe).
let exitStdoutLost: Int32 = 74

func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

/// Writes all of `text` to `fd`; false when the reader is gone (closed fd, broken pipe).
@discardableResult
func write(_ text: String, to fd: Int32) -> Bool {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return Glibc.write(fd, base + offset, buffer.count - offset)
        }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return false }
        offset += n
    }
    return true
}

/// Reads stdin up to one byte past the limit, so an oversized request is recognised without reading it all.
/// The buffer is not zero-filled first: that alone cost ~67k instructions per process.
func readStdin(limit: Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: limit + 1) { buffer, count in
        count = 0
        guard let base = buffer.baseAddress else { return }
        while count < buffer.count {
            let n = read(0, base + count, buffer.count - count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            count += n
        }
    }
}

let context = Config.runtimeContext(environment)
let lambdaRuntimeAPI = Config.lambdaRuntimeAPI(environment)
// `CommandLine.arguments` would build an Array of Strings on every request just to look for one word.
switch Command(argc: CommandLine.argc, argv: CommandLine.unsafeArgv, openWhisk: context.openWhisk) {
case .serve:
    break
case .migrate:
    let result = Handler.migrate(environment: environment)
    exit(write(result.line, to: 1) ? result.exitCode : exitStdoutLost)
case .scramKeys:
    let result = Handler.scramKeys(environment: environment)
    exit(write(result.line, to: 1) ? result.exitCode : exitStdoutLost)
case .help:
    exit(write(Command.usage, to: 1) ? 0 : exitStdoutLost)
case .version:
    exit(write(Command.versionLine, to: 1) ? 0 : exitStdoutLost)
case .unknown(let argument):
    write("leetcode-claim: unknown argument \"\(argument)\"\n\n" + Command.usage, to: 2)
    exit(Command.exitUsage)
}
// On AWS Lambda the process serves invocations from the Runtime API until Lambda ends it.
if let lambdaRuntimeAPI {
    exit(LambdaRuntime.run(address: lambdaRuntimeAPI, environment: environment) { write($0, to: 2) })
}
// A person who runs the binary in a terminal sees why it waits.
if isatty(0) == 1 {
    write("leetcode-claim: reading one JSON request from stdin (end it with Ctrl-D); --help for usage\n", to: 2)
}
let outcome = Handler.handle(input: readStdin(limit: Request.maxBytes), context: context, environment: environment)
let delivered = write(outcome.line, to: 1)
write(outcome.logLine(stdoutLost: !delivered), to: 2)
if !delivered { exit(exitStdoutLost) }
if case .zero? = Config.exitCodes(environment) { exit(0) }
exit(outcome.response.exitCode)
