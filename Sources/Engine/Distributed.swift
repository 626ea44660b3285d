import Foundation
import MPIShim

/// Data-parallel training over MPI (`mpirun -np N replica run ...`); one process and no MPI
/// otherwise.
///
/// Inside `dataParallel { }` (the Harness wraps each training epoch in it) with more than one
/// rank:
/// - every batch a `PrefetchLoader` yields is the rank's contiguous shard of the global batch,
///   and augmentation draws by the image's position in the global batch (`batchOffset`), so
///   the ranks together see exactly what one process sees;
/// - `backward()` ends with one all-reduce of every leaf gradient it wrote (one fused buffer),
///   averaged over the ranks: after it the gradients are those of the mean of the ranks' losses;
/// - batch norm in training mode uses the statistics of the global batch (`batchNorm = .global`,
///   SimCLR's global BN) or of the rank's shard (`.perRank`);
/// - `allGather(_:blocks:)` concatenates a tensor across ranks with a gradient (contrastive
///   losses see every rank's embeddings as negatives).
/// Outside it (evaluation, k-means, reference rows) every rank computes alone, on its own copy
/// of the data, and gets the same numbers as the others.
public enum Distributed {
    public enum BatchNormMode: String, Sendable { case global, perRank = "per-rank" }

    /// Whether mpirun started this process (Open MPI sets OMPI_COMM_WORLD_SIZE).
    public static let launched = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil

    private static let world: (rank: Int, size: Int) = {
        guard launched else { return (0, 1) }
        let rc = replica_mpi_init()
        guard rc == 0 else { FileHandle.standardError.write(Data("replica: MPI_Init failed (MPI error \(rc))\n".utf8)); exit(1) }
        return (Int(replica_mpi_rank()), Int(replica_mpi_size()))
    }()

    public static var rank: Int { world.rank }
    public static var size: Int { world.size }
    /// Rank 0 alone writes checkpoints, results and the log.
    public static var isLeader: Bool { rank == 0 }

    nonisolated(unsafe) public static var batchNorm = BatchNormMode.global
    nonisolated(unsafe) private static var inside = false
    /// Seconds spent in collectives since the start (the bench's communication share).
    nonisolated(unsafe) public private(set) static var communicationSeconds = 0.0

    /// Joins the MPI job when there is one (MPI_Init); call first thing in `main`.
    public static func start() { _ = world }

    /// MPI_Finalize when this process joined a job; call on a normal exit.
    public static func finish() { if launched { _ = world; _ = replica_mpi_finalize() } }

    /// Ends the whole job: this rank's message on standard error, then MPI_Abort (or a plain
    /// exit in one process). Ranks other than 0 wait a moment first, so that an error every
    /// rank meets (a bad config key) is printed once, by rank 0.
    public static func abort(_ message: String, code: Int32 = 1) -> Never {
        guard size > 1 else { FileHandle.standardError.write(Data((message + "\n").utf8)); exit(code) }
        if rank != 0 { Thread.sleep(forTimeInterval: 1) }
        FileHandle.standardError.write(Data("rank \(rank) of \(size): \(message)\n".utf8))
        replica_mpi_abort(code)
        exit(code)
    }

    /// Whether sharding, gradient all-reduce and global BN are in force now.
    public static var isDataParallel: Bool { inside && size > 1 }

    /// Runs `body` as data-parallel training (see the type's documentation).
    public static func dataParallel<T>(_ body: () throws -> T) rethrows -> T {
        let was = inside
        inside = true
        defer { inside = was }
        return try body()
    }

    /// Runs `body` with every rank computing alone (an evaluation inside a training epoch).
    public static func alone<T>(_ body: () throws -> T) rethrows -> T {
        let was = inside
        inside = false
        defer { inside = was }
        return try body()
    }

    // MARK: Batches

    /// This rank's contiguous part of a global batch and its position in it; the whole batch
    /// at offset 0 outside data-parallel training.
    public static func shard(_ batch: [Int]) -> (indices: [Int], offset: Int) {
        guard isDataParallel else { return (batch, 0) }
        guard batch.count % size == 0 else {
            abort("a batch of \(batch.count) items does not split evenly over \(size) ranks: use a batch size that is a multiple of \(size) (or another -np)")
        }
        let n = batch.count / size
        return (Array(batch[(rank * n)..<((rank + 1) * n)]), rank * n)
    }

    private static let offsetKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The position of this rank's shard in the global batch being built on this thread (0
    /// outside `withBatchOffset`): random draws per image use it, so that image `b` of the
    /// shard draws what image `offset + b` of the global batch draws in one process.
    public static var batchOffset: Int { Int(bitPattern: pthread_getspecific(offsetKey)) }

    public static func withBatchOffset<T>(_ offset: Int, _ body: () throws -> T) rethrows -> T {
        let was = pthread_getspecific(offsetKey)
        pthread_setspecific(offsetKey, UnsafeRawPointer(bitPattern: offset))
        defer { pthread_setspecific(offsetKey, was) }
        return try body()
    }

    // MARK: Collectives (all ranks call them in the same order)

    @inline(__always) private static func timed(_ what: String, _ body: () -> Int32) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let rc = body()
        communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        if rc != 0 { abort("MPI \(what) failed (MPI error \(rc))") }
    }

    /// In-place sum over the ranks.
    public static func sum(_ values: inout [Double]) {
        guard size > 1 else { return }
        timed("all-reduce") { values.withUnsafeMutableBufferPointer { replica_mpi_allreduce_double($0.baseAddress, $0.count) } }
    }

    /// In-place sum over the ranks.
    public static func sum(_ values: inout [Float]) {
        values.withUnsafeMutableBufferPointer { sum($0.baseAddress!, count: $0.count) }
    }

    /// In-place sum over the ranks.
    public static func sum(_ values: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        timed("all-reduce") { replica_mpi_allreduce_float(values, count) }
    }

    /// Every rank's `values` (each rank the same count), in rank order: the global batch's
    /// indices from the shards'. `values` themselves outside data-parallel training.
    public static func allGather(_ values: [Int]) -> [Int] {
        guard isDataParallel else { return values }
        requireSameCount(values.count, "all-gather")
        var out = [Int](repeating: 0, count: values.count * size)
        timed("all-gather") { values.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { replica_mpi_allgather_long(s.baseAddress, s.count, $0.baseAddress) } } }
        return out
    }

    /// The mean over the ranks of each value (every rank must hold the same keys).
    public static func mean(_ values: [String: Double]) -> [String: Double] {
        guard size > 1 else { return values }
        let keys = values.keys.sorted()
        requireSameCount(keys.count, "metric mean")
        var v = keys.map { values[$0]! }
        sum(&v)
        return Dictionary(uniqueKeysWithValues: zip(keys, v.map { $0 / Double(size) }))
    }

    /// Rank `root`'s values of `tensors` on every rank, through one fused buffer.
    public static func broadcast(_ tensors: [Tensor], root: Int = 0) {
        guard size > 1 else { return }
        let total = tensors.reduce(0) { $0 + $1.count }
        requireSameCount(total, "broadcast")
        var buffer = [Float](repeating: 0, count: total)
        buffer.withUnsafeMutableBufferPointer { b in
            var at = 0
            for t in tensors { (b.baseAddress! + at).update(from: t.pointer, count: t.count); at += t.count }
            timed("broadcast") { replica_mpi_bcast_float(b.baseAddress, total, Int32(root)) }
            at = 0
            for t in tensors { t.pointer.update(from: b.baseAddress! + at, count: t.count); at += t.count }
        }
    }

    /// Replaces each gradient with its mean over the ranks: one all-reduce of one buffer.
    static func averageGradients(_ leaves: [Tensor]) {
        let grads = leaves.compactMap(\.grad)
        let total = grads.reduce(0) { $0 + $1.count }
        requireSameCount(total, "gradient all-reduce")
        withScratch([total]) { buffers in
            let b = buffers[0]
            var at = 0
            for g in grads { (b + at).update(from: g.pointer, count: g.count); at += g.count }
            sum(b, count: total)
            let scale = 1 / Float(size)
            at = 0
            for g in grads {
                let p = g.pointer
                for i in 0..<g.count { p[i] = b[at + i] * scale }
                at += g.count
            }
        }
    }

    /// Stops the job when the ranks disagree on a collective's size (their graphs or batches
    /// differ), instead of letting MPI read past a buffer or wait forever.
    private static func requireSameCount(_ n: Int, _ what: String) {
        var bounds = [n, -n]
        timed("all-reduce") { bounds.withUnsafeMutableBufferPointer { replica_mpi_allreduce_max_long($0.baseAddress, 2) } }
        if bounds[0] != -bounds[1] {
            abort("\(what): the ranks hold between \(-bounds[1]) and \(bounds[0]) values (this rank \(n)); every rank must run the same step")
        }
    }
}

/// `x` concatenated over the ranks along axis 0, with a gradient: `x` is `blocks` equal row
/// blocks (the views of a batch), and block v of the result holds block v of rank 0, then of
/// rank 1, ...: the order one process has for the global batch. The gradient of a rank's
/// rows is the sum over the ranks of the gradient each computed for them. `x` itself outside
/// data-parallel training.
public func allGather(_ x: Tensor, blocks: Int = 1) -> Tensor {
    guard Distributed.isDataParallel else { return x }
    let ranks = Distributed.size, rank = Distributed.rank
    precondition(x.rank >= 1 && blocks >= 1 && x.shape[0] % blocks == 0, "allGather of \(x.shape) in \(blocks) blocks")
    let rows = x.shape[0] / blocks, inner = x.count / max(x.shape[0], 1), block = rows * inner
    let shapes = Distributed.allGather(x.shape)
    for r in 0..<ranks where Array(shapes[(r * x.rank)..<((r + 1) * x.rank)]) != x.shape {
        Distributed.abort("allGather: rank \(r) holds \(Array(shapes[(r * x.rank)..<((r + 1) * x.rank)])), this rank \(x.shape)")
    }
    var shape = x.shape
    shape[0] *= ranks
    let out = Tensor(shape: shape, zeroed: false)
    withScratch([x.count * ranks]) { buffers in
        let received = buffers[0]
        Distributed.gather(x.pointer, count: x.count, into: received)
        for r in 0..<ranks {
            for v in 0..<blocks { (out.pointer + (v * ranks + r) * block).update(from: received + r * x.count + v * block, count: block) }
        }
    }
    return Tensor.result(out, [x]) { g in
        let all = g.copy()
        Distributed.sum(all.pointer, count: all.count)
        let gx = Tensor(shape: x.shape, zeroed: false)
        for v in 0..<blocks { (gx.pointer + v * block).update(from: all.pointer + (v * ranks + rank) * block, count: block) }
        return [gx]
    }
}

extension Distributed {
    /// `count` floats from every rank into `receive` (ranks × count), in rank order.
    static func gather(_ send: UnsafePointer<Float>, count: Int, into receive: UnsafeMutablePointer<Float>) {
        timed("all-gather") { replica_mpi_allgather_float(send, count, receive) }
    }
}
