/// argv as glibc hands it to every `.init_array` function, captured before anything else runs.
///
/// The Swift runtime's own lookup (`_swift_stdlib_getUnsafeArgvArgc` in CommandLine.cpp) comes with a static
/// constructor that reads /proc/self/maps with sscanf in every process, whether or not it looks at its arguments:
/// 5 syscalls, a 4 KiB stdio buffer and code on three more pages at start-up, and it needs /proc. Defining the
/// function here keeps that object out of the link, so `CommandLine` reads what was captured instead.
nonisolated(unsafe) private var capturedArgc: Int32 = 0
nonisolated(unsafe) private var capturedArgv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?

@section(".init_array") @used
private let captureArguments:
    @convention(c) (
        Int32, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    ) -> Void = { argc, argv, _ in
        capturedArgc = argc
        capturedArgv = argv
    }

/// The runtime's entry point behind `CommandLine.argc` and `CommandLine.unsafeArgv`.
@_cdecl("_swift_stdlib_getUnsafeArgvArgc")
func unsafeArgvArgc(_ count: UnsafeMutablePointer<Int32>) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    count.pointee = capturedArgc
    return capturedArgv
}
