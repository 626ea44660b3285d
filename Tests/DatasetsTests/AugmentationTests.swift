import Datasets
import Engine
import Foundation
import TestSupport
import XCTest

final class AugmentationTests: XCTestCase {
    func ramp(_ c: Int = 1, _ h: Int = 6, _ w: Int = 5) -> Image {
        Image(channels: c, height: h, width: w, data: (0..<(c * h * w)).map { Float($0 % 97) / 97 })
    }

    func testFullCropAtSameSizeIsTheIdentityAndFlipIsAMirror() {
        var rng = RNG(seed: 1)
        let img = ramp(3, 6, 6)
        let same = Augmentation([.randomResizedCrop(size: 6, scale: 1...1, ratio: 1...1)], mean: [0], std: [1])(img, rng: &rng)
        XCTAssertEqual(same.data, img.data)
        let flipped = Augmentation([.horizontalFlip(p: 1)], mean: [0], std: [1])(img, rng: &rng)
        XCTAssertEqual(flipped.at(1, 2, 0), img.at(1, 2, 5))
        XCTAssertEqual(Augmentation([.horizontalFlip(p: 1), .horizontalFlip(p: 1)], mean: [0], std: [1])(img, rng: &rng).data, img.data)
    }

    func testBilinearDownsampleAveragesNeighbours() {
        // 4×4 → 2×2 with half-pixel centres samples at 0.5 and 2.5: the mean of each 2×2 block.
        let img = Image(channels: 1, height: 4, width: 4, data: (0..<16).map(Float.init))
        var rng = RNG(seed: 0)
        let out = Augmentation([.randomResizedCrop(size: 2, scale: 1...1, ratio: 1...1)], mean: [0], std: [1])(img, rng: &rng)
        XCTAssertEqual(out.data, [2.5, 4.5, 10.5, 12.5])
    }

    /// torchvision's RandomResizedCrop: area a ~ U(0.2, 1)·784, log-ratio ~ U(log 3/4, log 4/3),
    /// w = round(√(a·r)), h = round(√(a/r)). Rounding moves each side by at most ½ pixel, so a
    /// box is possible only if (w + ½)(h + ½) ≥ 0.2·784 and (w + ½)/(h − ½) ≥ 3/4 and
    /// (w − ½)/(h + ½) ≤ 4/3.
    func testCropBoxesRespectScaleAndRatio() {
        var rng = RNG(seed: 2)
        var logRatios: [Double] = [], smallAreas = 0
        for _ in 0..<2000 {
            let b = cropBox(height: 28, width: 28, scale: 0.2...1, ratio: 0.75...(4.0 / 3), &rng)
            XCTAssertTrue(b.top >= 0 && b.left >= 0 && b.top + b.height <= 28 && b.left + b.width <= 28)
            let (w, h) = (Double(b.width), Double(b.height))
            XCTAssertGreaterThanOrEqual((w + 0.5) * (h + 0.5), 0.2 * 784, "\(b)")
            XCTAssertGreaterThanOrEqual((w + 0.5) / (h - 0.5), 0.75, "\(b)")
            XCTAssertLessThanOrEqual((w - 0.5) / (h + 0.5), 4.0 / 3, "\(b)")
            logRatios.append(Foundation.log(w / h))
            if w * h < 0.3 * 784 { smallAreas += 1 }
        }
        // Both ends of the ranges are used, and the ratio is drawn symmetrically in log space.
        XCTAssertGreaterThan(logRatios.filter { $0 < Foundation.log(0.85) }.count, 100)
        XCTAssertGreaterThan(logRatios.filter { $0 > Foundation.log(1 / 0.85) }.count, 100)
        XCTAssertEqual(logRatios.reduce(0, +) / 2000, 0, accuracy: 0.012)   // ±3 sd; a uniform ratio would give +0.027
        XCTAssertGreaterThan(smallAreas, 100)   // U(0.2, 1): an eighth of the draws below 0.3
    }

    func testJitterFormulas() {
        let img = Image(channels: 1, height: 1, width: 4, data: [0.1, 0.2, 0.3, 0.8])
        var rng = RNG(seed: 3)
        // Brightness only: x·f with f ∈ [0.6, 1.4]; the ratio is the same for every pixel.
        let b = Augmentation([.colorJitter(brightness: 0.4, contrast: 0, saturation: 0, hue: 0, p: 1)], mean: [0], std: [1])(img, rng: &rng)
        let f = b.data[0] / 0.1
        XCTAssertTrue(f >= 0.6 && f <= 1.4)
        for i in 0..<4 { XCTAssertEqual(b.data[i], Swift.min(img.data[i] * f, 1), accuracy: 1e-6) }
        // Contrast only: blend with the mean (0.35); the mean is preserved when nothing clips.
        let c = Augmentation([.colorJitter(brightness: 0, contrast: 0.4, saturation: 0, hue: 0, p: 1)], mean: [0], std: [1])(img, rng: &rng)
        XCTAssertEqual(c.data.reduce(0, +) / 4, 0.35, accuracy: 1e-6)
        let k = (c.data[3] - 0.35) / (0.8 - 0.35)
        XCTAssertEqual(c.data[0], 0.35 + k * (0.1 - 0.35), accuracy: 1e-6)
        // p = 0 leaves the image alone.
        XCTAssertEqual(Augmentation([.colorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0)], mean: [0], std: [1])(img, rng: &rng).data, img.data)
    }

    func testGrayscaleHueAndBlur() {
        let rgb = Image(channels: 3, height: 1, width: 1, data: [1, 0.5, 0])
        var rng = RNG(seed: 4)
        let g = Augmentation([.grayscale(p: 1)], mean: [0], std: [1])(rgb, rng: &rng)
        XCTAssertEqual(g.data, [Float](repeating: 0.299 + 0.587 * 0.5, count: 3))
        // A hue shift of 1/3 turns orange (30°) into spring green (150°), keeping S and V.
        let h = hueShift(rgb, 1.0 / 3)
        XCTAssertEqual(h.data[0], 0, accuracy: 1e-5); XCTAssertEqual(h.data[1], 1, accuracy: 1e-5); XCTAssertEqual(h.data[2], 0.5, accuracy: 1e-5)
        for (a, b) in zip(hueShift(rgb, 1).data, rgb.data) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        let flat = Image(channels: 1, height: 5, width: 5, data: [Float](repeating: 0.4, count: 25))
        let blurred = Augmentation([.gaussianBlur(kernel: 3, sigma: 0.1...2, p: 1)], mean: [0], std: [1])(flat, rng: &rng)
        for v in blurred.data { XCTAssertEqual(v, 0.4, accuracy: 1e-6) }
        var spike = Image(channels: 1, height: 5, width: 5, data: [Float](repeating: 0, count: 25)); spike.data[12] = 1
        let spread = Augmentation([.gaussianBlur(kernel: 3, sigma: 1...1, p: 1)], mean: [0], std: [1])(spike, rng: &rng)
        XCTAssertEqual(spread.data.reduce(0, +), 1, accuracy: 1e-5)
        let w = 1 / (1 + 2 * Float(Foundation.exp(-0.5)))
        XCTAssertEqual(spread.data[12], w * w, accuracy: 1e-6)
    }

    func testNormalizeDeterminismAndViews() {
        let aug = Augmentation([.randomResizedCrop(size: 5, scale: 0.2...1, ratio: 0.75...1.33), .horizontalFlip(p: 0.5),
                                .colorJitter(brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0, p: 0.8)], mean: [0.5], std: [0.25])
        let img = ramp()
        var a = RNG(seed: 5), b = RNG(seed: 5)
        XCTAssertEqual(aug(img, rng: &a).data, aug(img, rng: &b).data)
        let views = aug.views(img, count: 2, rng: RNG(seed: 6))
        XCTAssertNotEqual(views[0].data, views[1].data)
        var r = RNG(seed: 0)
        XCTAssertEqual(Augmentation([], mean: [0.5], std: [0.25])(Image(channels: 1, height: 1, width: 2, data: [0, 1]), rng: &r).data, [-2, 2])
    }
}

final class SamplerAndLoaderTests: XCTestCase {
    func testShuffledSamplerCoversEachIndexOncePerEpoch() {
        let s = ShuffledSampler(count: 103, batchSize: 10, dropLast: false, rng: RNG(seed: 1))
        let e0 = s.batches(epoch: 0), e1 = s.batches(epoch: 1)
        XCTAssertEqual(e0.flatMap { $0 }.sorted(), Array(0..<103))
        XCTAssertEqual(e0.last!.count, 3)
        XCTAssertNotEqual(e0, e1)
        XCTAssertEqual(e0, s.batches(epoch: 0))
        XCTAssertEqual(ShuffledSampler(count: 103, batchSize: 10, rng: RNG(seed: 1)).batches(epoch: 0).count, 10)
    }

    func testClassBalancedBatchesArePTimesK() {
        let labels = (0..<200).map { $0 % 10 } + [10, 10]   // class 10 has only 2 members
        let s = ClassBalancedSampler(labels: labels, p: 4, k: 3, rng: RNG(seed: 2))
        for batch in s.batches(epoch: 0) {
            XCTAssertEqual(batch.count, 12)
            let classes = batch.map { labels[$0] }
            XCTAssertEqual(Set(classes).count, 4)
            for c in Set(classes) { XCTAssertEqual(classes.filter { $0 == c }.count, 3) }
        }
    }

    func testPseudoLabelSamplerIsUniformOverClusters() {
        let labels = [Int](repeating: 0, count: 900) + [Int](repeating: 1, count: 90) + [Int](repeating: 2, count: 10)
        let batches = UniformPseudoLabelSampler(labels: labels, batchSize: 100, rng: RNG(seed: 3)).batches(epoch: 0)
        XCTAssertEqual(batches.count, 10)
        var counts = [0, 0, 0]
        for i in batches.flatMap({ $0 }) { counts[labels[i]] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 1000.0 / 3, accuracy: 40) }
    }

    func testPrefetchLoaderYieldsTheSameBatchesInOrderOffTheMainThread() {
        let batches = ShuffledSampler(count: 50, batchSize: 5, rng: RNG(seed: 4)).batches(epoch: 0)
        var onOtherThread = true
        let loader = PrefetchLoader(batches: batches) { i, idx -> (Int, [Int], Bool) in (i, idx.map { $0 * 2 }, !Thread.isMainThread) }
        var seen = 0
        for (i, doubled, other) in loader {
            XCTAssertEqual(i, seen)
            XCTAssertEqual(doubled, batches[seen].map { $0 * 2 })
            onOtherThread = onOtherThread && other
            seen += 1
        }
        XCTAssertEqual(seen, batches.count)
        XCTAssertTrue(onOtherThread)
    }
}
