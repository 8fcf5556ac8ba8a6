import NIOCore

/// Runs a task's jobs on one NIO event loop: the loop that owns the connection the task
/// serves.
///
/// Why: a served chunk crossed threads at every step: the frame arrived on the event loop
/// and woke the serving task on Swift's cooperative pool, and its answer was handed back to
/// the event loop to be written. On this project's 2-core VMs each such wake-up of another
/// thread cost more than the copy of the chunk (context switches and wake-ups were a
/// quarter of a seeder's CPU samples). With the serving task on the connection's own loop,
/// a frame resumes it in place and its answer is written in place.
///
/// Only for tasks that do little work between awaits: anything long (hashing a chunk)
/// delays the other connections of the loop.
final class EventLoopTaskExecutor: TaskExecutor {
    private let eventLoop: any EventLoop

    /// An executor for `eventLoop`.
    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
