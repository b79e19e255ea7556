extension Handler {
    /// What a long-running process keeps from one invocation to the next (AWS Lambda): the configuration, read and
    /// validated once, and the store, opened once (SQLite keeps its handle, PostgreSQL its connection). Nothing of an
    /// invocation is kept: the caller, the request and its id live in `serve`'s locals, and the store is readied
    /// (`ClaimStore.prepare`) before each invocation uses it.
    final class Session {
        let config: Config
        private var store: (any ClaimStore)?

        /// Opens the store at once, so that the first invocation finds it ready (Lambda's init phase); when it cannot
        /// be opened yet, the first invocation that needs it tries again and answers the failure.
        init(config: Config) {
            self.config = config
            store = try? Handler.openStore(config)
        }

        /// `Handler.handle` for one invocation whose answer is due by `answerBy` (nil: the configured timeouts).
        func handle(_ input: [UInt8], context: RuntimeContext, answerBy: Deadline?) -> Outcome {
            var config = self.config
            config.answerBy = answerBy
            return Handler.serve(input, context: context, config: { config }) { (config) throws(ClaimError) in
                if let store {
                    try store.prepare(answerBy: answerBy)
                    return store
                }
                let opened = try Handler.openStore(config)
                store = opened
                return opened
            }
        }
    }
}
