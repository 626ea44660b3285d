import Datasets
import Engine
import Foundation
import Harness

/// The two-view recipe on grayscale or RGB images (MoCo v2's, without blur; see
/// docs/architecture.md): saturation, hue and grayscale are no-ops on one channel, so one
/// recipe serves Fashion-MNIST and CIFAR-10.
public struct ViewRecipe: Codable, Equatable, Sendable {
    /// RandomResizedCrop area range (aspect ratio 3/4–4/3), output the image's size.
    public var cropScale: [Float]
    public var flip: Float
    /// Brightness, contrast, saturation, hue.
    public var jitter: [Float]
    public var jitterP: Float
    public var grayscaleP: Float

    /// Range checks, naming `key.…` (e.g. config.augmentation.crop_scale).
    public func validate(key: String = "config.augmentation") throws {
        try require("\(key).crop_scale", cropScale.count == 2 && cropScale[0] > 0 && cropScale[0] <= cropScale[1] && cropScale[1] <= 1,
                    "[low, high] with 0 < low ≤ high ≤ 1, got \(cropScale)")
        try require("\(key).jitter", jitter.count == 4 && jitter.allSatisfy { $0 >= 0 && $0.isFinite },
                    "[brightness, contrast, saturation, hue] ≥ 0, got \(jitter)")
        for (k, p) in [("flip", flip), ("jitter_p", jitterP), ("grayscale_p", grayscaleP)] { try require("\(key).\(k)", p, in: 0...1) }
    }

    public func augmentation(size: Int, mean: Float, std: Float) throws -> Augmentation {
        try validate()
        return Augmentation([.randomResizedCrop(size: size, scale: cropScale[0]...cropScale[1], ratio: 0.75...(4.0 / 3)),
                             .horizontalFlip(p: flip),
                             .colorJitter(brightness: jitter[0], contrast: jitter[1], saturation: jitter[2], hue: jitter[3], p: jitterP),
                             .grayscale(p: grayscaleP)],
                            mean: [mean], std: [std])
    }
}

/// Augmented views of a batch whose draws depend only on (seed, epoch, step): the stream
/// `augment/epoch/step` of `run`.
public func viewBatches(_ views: Augmentation, _ data: ImageData, _ indices: [Int], count: Int, run: RNG, epoch: Int, step: Int) -> [Tensor] {
    views.viewBatches(data.train, indices, count: count, rng: run.derive("augment").derive(UInt64(epoch)).derive(UInt64(step)))
}

/// Eight rows of (image, view 1, view 2) × 2: the pairs the first training batch sees
/// (the sampler stream `order`, views as `viewBatches` draws them at epoch 0, step 0).
public func writeViewPairs(_ data: ImageData, views: Augmentation, batchSize: Int, run: RNG, to path: String) throws {
    let train = data.train, (mean, std) = (data.mean, data.std)
    let idx = Array(ShuffledSampler(count: train.count, batchSize: batchSize, rng: run.derive("order")).batches(epoch: 0)[0].prefix(16))
    let pair = viewBatches(views, data, idx, count: 2, run: run, epoch: 0, step: 0)
    let (c, h, w) = (train.channels, train.height, train.width)
    func hwc(_ chw: UnsafePointer<Float>, denormalize: Bool) -> [UInt8] {
        var cell = [UInt8](repeating: 0, count: h * w * c)
        for ch in 0..<c { for p in 0..<(h * w) {
            let v = denormalize ? chw[ch * h * w + p] * std + mean : chw[ch * h * w + p]
            cell[p * c + ch] = UInt8((Swift.min(Swift.max(v, 0), 1) * 255).rounded())
        } }
        return cell
    }
    var cells: [[UInt8]] = []
    for (b, i) in idx.enumerated() {
        cells.append(Image(train, i).data.withUnsafeBufferPointer { hwc($0.baseAddress!, denormalize: false) })
        for v in pair { cells.append(hwc(v.pointer + b * train.imageSize, denormalize: true)) }
    }
    try writePNGGrid(cells, rows: (idx.count + 1) / 2, columns: 6, height: h, width: w, channels: c, scale: 3, to: path)
}

/// What every multi-view method sets up alike: the run's data (`ImageData.load`, refusing a
/// split smaller than `batchSize`), the augmentation of `recipe`, the run's RNG, and
/// augmented-pairs.png written once per run.
public func loadViews(_ context: RunContext, recipe: ViewRecipe, perClass: Int?, batchSize: Int) throws -> (data: ImageData, views: Augmentation, run: RNG) {
    let data = try ImageData.load(context, perClass: perClass, batchSize: batchSize)
    let views = try recipe.augmentation(size: data.train.height, mean: data.mean, std: data.std), run = RNG(seed: context.seed)
    try context.cache.value("pairs") {
        try writeViewPairs(data, views: views, batchSize: batchSize, run: run, to: context.output + "/augmented-pairs.png")
    }
    return (data, views, run)
}
