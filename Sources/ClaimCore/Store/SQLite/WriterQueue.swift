#if canImport(Glibc)
import Glibc
#endif

/// The writers of one database file, waiting their turn in the kernel: an exclusive `flock` on the file, held from
/// before `BEGIN IMMEDIATE` until after `COMMIT`.
///
/// SQLite's own lock has no queue: a process that finds it taken sleeps (1, 2, 5 … 100 ms) and tries again, so in a
/// burst of hundreds of processes the lock sits free while they sleep, and the unlucky ones retry until their
/// timeout. Waiters on a `flock` sleep in the kernel and are woken in turn as it is released, and burn no CPU. It
/// only orders our own processes: SQLite's locking still decides everything, for other programs too.
final class WriterQueue {
    /// A descriptor of the database file of our own. Closing it would drop every POSIX lock this process holds on
    /// the file, SQLite's included (https://sqlite.org/howtocorrupt.html#_posix_advisory_locks_canceled_by_a_separate_thread_doing_close_),
    /// so it lives as long as the connection: the connection closes SQLite first (see `SQLiteConnection.deinit`).
    private let fd: Int32

    /// Opens `path` (which SQLite has just opened or created). Without a descriptor there is no queue, only SQLite's
    /// locking.
    ///
    /// Read-only on purpose. On NFS, Linux emulates `flock` with a POSIX lock on the whole file, which would meet
    /// SQLite's own POSIX locks, and an exclusive one needs a descriptor open for writing
    /// (https://man7.org/linux/man-pages/man2/flock.2.html): there `flock` fails with EBADF, `enter` lets the process
    /// through, and only SQLite's locking orders the writers. (SQLite does not belong on NFS anyway: README.)
    init(path: String) {
        fd = open(path, O_RDONLY | O_CLOEXEC)
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Waits for this process's turn until `deadlineNs` (`Clock.monotonicNs`). False when the deadline came first.
    func enter(deadlineNs: UInt64) -> Bool {
        guard fd >= 0 else { return true }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
        guard errno == EWOULDBLOCK || errno == EINTR else { return true }
        // A blocking flock has no timeout: a one-shot SIGALRM, whose handler is installed without SA_RESTART, ends
        // the wait with EINTR at the deadline. The process has one thread, so the signal interrupts this wait.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        var previous = sigaction()
        sigaction(SIGALRM, &action, &previous)
        defer { sigaction(SIGALRM, &previous, nil) }
        while true {
            let now = Clock.monotonicNs()
            guard now < deadlineNs else { return false }
            var timer = WriterQueue.alarm(in: deadlineNs - now)
            guard setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &timer, nil) == 0 else {
                // No timer to end a blocking wait: try in short sleeps instead.
                if flock(fd, LOCK_EX | LOCK_NB) == 0 { return true }
                usleep(1000)
                continue
            }
            let rc = flock(fd, LOCK_EX)
            let failure = errno
            var off = itimerval()
            setitimer(__itimer_which_t(ITIMER_REAL.rawValue), &off, nil)
            if rc == 0 { return true }
            if failure != EINTR { return true }
        }
    }

    /// The timer for a wait of `nanoseconds` (> 0): whole microseconds, rounded up, with `tv_usec` below 1,000,000
    /// (setitimer refuses the timer otherwise), repeating every 10 ms so that a signal that lands before `flock`
    /// starts waiting (the process was preempted in between) is followed by another, and the deadline checked again.
    static func alarm(in nanoseconds: UInt64) -> itimerval {
        let micros = (nanoseconds + 999) / 1000
        var timer = itimerval()
        timer.it_value = timeval(tv_sec: Int(micros / 1_000_000), tv_usec: Int(micros % 1_000_000))
        timer.it_interval = timeval(tv_sec: 0, tv_usec: 10_000)
        return timer
    }

    /// Lets the next writer in.
    func leave() {
        if fd >= 0 { flock(fd, LOCK_UN) }
    }
}
