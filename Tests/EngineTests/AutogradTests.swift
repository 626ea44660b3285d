import Engine
import TestSupport
import XCTest

/// Tape semantics: accumulation, stop-gradient, no-grad scope, errors users can hit.
final class AutogradTests: XCTestCase {
    func testLeafGradientsAccumulateAcrossBackwardCalls() {
        let w = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        (w * w).sum().backward()
        XCTAssertEqual(w.grad!.array, [2, 4, 6])   // d/dw Σw² = 2w
        (w * 3).sum().backward()
        XCTAssertEqual(w.grad!.array, [5, 7, 9])
        w.grad = nil
        (w * w * w).sum().backward()
        XCTAssertEqual(w.grad!.array, [3, 12, 27])  // 3w²
    }

    func testTensorUsedTwiceSumsBothPaths() {
        let x = Tensor([2], shape: [1], requiresGrad: true)
        let y = x * x + x.exp() * x   // dy/dx = 2x + eˣ(1 + x)
        y.sum().backward()
        XCTAssertEqual(x.grad!.item, 4 + Float(Foundation.exp(2.0)) * 3, accuracy: 1e-4)
    }

    func testDetachedAndNoGradScope() {
        let x = Tensor([1, 2], shape: [2], requiresGrad: true)
        let y = (x * x.detached()).sum()   // d/dx = x (the detached factor is a constant)
        y.backward()
        XCTAssertEqual(x.grad!.array, [1, 2])
        let z = withoutGradients { x * 2 }
        XCTAssertFalse(z.requiresGrad)
        XCTAssertTrue(GradMode.isEnabled)
        XCTAssertFalse(x.detached().requiresGrad)
        XCTAssertTrue(x.detached().storage === x.storage)
    }

    func testNoGradModeIsPerThread() {
        let x = Tensor([1], shape: [1], requiresGrad: true)
        let seen = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var value = false }
        let fromOtherThread = Box()
        withoutGradients {
            Thread { fromOtherThread.value = (x * 2).requiresGrad; seen.signal() }.start()
            seen.wait()
        }
        XCTAssertTrue(fromOtherThread.value)
    }

    func testDeepChainDoesNotOverflowTheStack() {
        let x = Tensor([0.5], shape: [1], requiresGrad: true)
        var y = x
        for _ in 0..<20_000 { y = y * 1.0 }
        y.sum().backward()
        XCTAssertEqual(x.grad!.item, 1)
    }

    func testReshapeIsAView() {
        let x = Tensor((0..<6).map(Float.init), shape: [2, 3])
        let v = x.reshaped([3, 2])
        XCTAssertTrue(v.storage === x.storage)
        XCTAssertEqual(x.reshaped([-1]).shape, [6])
    }
}
