import Foundation

/// How many windows of `kernel` fit along a side of `size` with `padding` on both ends at
/// `stride` (floor mode, as PyTorch): 0 when not even one fits. (Integer division truncates
/// toward zero, so the plain formula would give 1 for a 1-pixel side and a 2-pixel window.)
@inline(__always)
public func windowCount(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int {
    let span = size + 2 * padding - kernel
    return span < 0 ? 0 : span / stride + 1
}

/// A debug mode for the kernels: with `REPLICA_BOUNDS_CHECKS=1` in the environment (as
/// `make test` sets it) every kernel that reads through computed offsets checks them, and an
/// offset outside its buffer stops the process with the kernel's name instead of reading
/// garbage. Kernels read the flag once per call (a global read per row would cost a third of
/// a SimSiam step), so off it costs one predictable branch per row.
public enum Kernels {
    public static let boundsChecks = ProcessInfo.processInfo.environment["REPLICA_BOUNDS_CHECKS"] == "1"

    /// How conv2d lays out its products: per shape (`.auto`), or one path for every shape,
    /// so that tests can hold both paths to the same loops.
    public enum ConvPath: Sendable { case auto, im2col, taps }
    nonisolated(unsafe) public static var convPath = ConvPath.auto
}

/// Stops with a message when `end` (one past the last element read) exceeds `size` and
/// `enabled` (the kernel's copy of `Kernels.boundsChecks`) is on.
@inline(__always)
func checkBounds(_ enabled: Bool, _ end: Int, within size: Int, _ kernel: StaticString) {
    if enabled && end > size {
        fatalError("bounds check: \(kernel) reads up to element \(end - 1) of a buffer of \(size)")
    }
}
