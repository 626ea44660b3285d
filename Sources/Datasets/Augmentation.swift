import Engine
import Foundation

/// A float image [C, H, W] with values in [0, 1] (before normalization).
public struct Image {
    public var channels: Int, height: Int, width: Int
    public var data: [Float]

    public init(channels: Int, height: Int, width: Int, data: [Float]) {
        precondition(data.count == channels * height * width, "\(data.count) values for \(channels)x\(height)x\(width)")
        (self.channels, self.height, self.width, self.data) = (channels, height, width, data)
    }

    /// Image `i` of a set, scaled to [0, 1].
    public init(_ set: ImageSet, _ i: Int) {
        let (h, w, c) = (set.height, set.width, set.channels)
        var d = [Float](repeating: 0, count: c * h * w)
        set.pixels.withUnsafeBufferPointer { px in
            let src = px.baseAddress! + i * set.imageSize
            for p in 0..<(h * w) { for ch in 0..<c { d[ch * h * w + p] = Float(src[p * c + ch]) * (1 / 255) } }
        }
        self.init(channels: c, height: h, width: w, data: d)
    }

    @inline(__always) public func at(_ c: Int, _ y: Int, _ x: Int) -> Float { data[(c * height + y) * width + x] }
}

/// One per-sample transform, with torchvision's semantics.
public enum Transform: Equatable, Sendable {
    /// Crop of area fraction U(scale) and aspect ratio log-U(ratio), resized to size×size
    /// (bilinear, half-pixel centres); torchvision's 10 tries, then a centre crop.
    case randomResizedCrop(size: Int, scale: ClosedRange<Float>, ratio: ClosedRange<Float>)
    case horizontalFlip(p: Float)
    /// Brightness/contrast/saturation/hue jitter applied with probability p, in random order;
    /// factors U[max(0, 1 − s), 1 + s], hue shift U[−h, h]. Saturation and hue are no-ops on
    /// one channel.
    case colorJitter(brightness: Float, contrast: Float, saturation: Float, hue: Float, p: Float)
    /// RGB → luma (0.299, 0.587, 0.114), replicated, with probability p.
    case grayscale(p: Float)
    /// Gaussian blur with σ ~ U(sigma), odd kernel size, reflect padding, with probability p.
    case gaussianBlur(kernel: Int, sigma: ClosedRange<Float>, p: Float)
}

/// A pipeline of transforms followed by per-channel normalization.
public struct Augmentation: Sendable {
    public var transforms: [Transform]
    public var mean: [Float], std: [Float]

    public init(_ transforms: [Transform], mean: [Float], std: [Float]) {
        (self.transforms, self.mean, self.std) = (transforms, mean, std)
    }

    /// Applies every transform with draws from `rng`, then normalizes.
    public func callAsFunction(_ input: Image, rng: inout RNG) -> Image {
        var img = input
        for t in transforms { img = apply(t, img, &rng) }
        for c in 0..<img.channels {
            let m = mean[c % mean.count], s = std[c % std.count], n = img.height * img.width
            for i in (c * n)..<((c + 1) * n) { img.data[i] = (img.data[i] - m) / s }
        }
        return img
    }

    /// `count` views of the same image, each with its own draws.
    public func views(_ input: Image, count: Int, rng: RNG) -> [Image] {
        (0..<count).map { v in var r = rng.derive(UInt64(v)); return self(input, rng: &r) }
    }

    /// `count` augmented views of each image of a batch, as `count` tensors [B, C, H', W']:
    /// image `b` of the batch draws from `rng.derive(b)`, view `v` from its `derive(v)` (`b`
    /// counted in the global batch when this is a rank's shard: `Distributed.batchOffset`).
    public func viewBatches(_ set: ImageSet, _ indices: [Int], count: Int, rng: RNG) -> [Tensor] {
        var out: [Tensor] = []
        let offset = Distributed.batchOffset
        for (b, i) in indices.enumerated() {
            for (v, view) in views(Image(set, i), count: count, rng: rng.derive(UInt64(offset + b))).enumerated() {
                if out.count < count { out.append(Tensor.zeros([indices.count, view.channels, view.height, view.width])) }
                (out[v].pointer + b * view.data.count).update(from: view.data, count: view.data.count)
            }
        }
        return out
    }
}

func apply(_ t: Transform, _ img: Image, _ rng: inout RNG) -> Image {
    switch t {
    case let .randomResizedCrop(size, scale, ratio): return randomResizedCrop(img, size: size, scale: scale, ratio: ratio, &rng)
    case let .horizontalFlip(p): return rng.bernoulli(p) ? flipped(img) : img
    case let .colorJitter(b, c, s, h, p):
        guard rng.bernoulli(p) else { return img }
        var out = img
        for op in rng.permutation(4) {   // random order, as torchvision
            switch op {
            case 0 where b > 0: let f = rng.uniform(Swift.max(0, 1 - b), 1 + b); out = blend(out, with: nil, factor: f)
            case 1 where c > 0: let f = rng.uniform(Swift.max(0, 1 - c), 1 + c); out = blend(out, with: .mean, factor: f)
            case 2 where s > 0: let f = rng.uniform(Swift.max(0, 1 - s), 1 + s); if out.channels == 3 { out = blend(out, with: .gray, factor: f) }
            case 3 where h > 0: let f = rng.uniform(-h, h); if out.channels == 3 { out = hueShift(out, f) }
            default: break
            }
        }
        return out
    case let .grayscale(p):
        guard img.channels == 3, rng.bernoulli(p) else { return img }
        let g = luma(img)
        return Image(channels: 3, height: img.height, width: img.width, data: g + g + g)
    case let .gaussianBlur(k, sigma, p):
        guard rng.bernoulli(p) else { return img }
        return blurred(img, kernel: k, sigma: rng.uniform(sigma.lowerBound, sigma.upperBound))
    }
}

/// torchvision's RandomResizedCrop.get_params: the crop box for an image of this size.
public func cropBox(height h: Int, width w: Int, scale: ClosedRange<Float>, ratio: ClosedRange<Float>, _ rng: inout RNG) -> (top: Int, left: Int, height: Int, width: Int) {
    let area = Float(h * w), logLo = Foundation.log(ratio.lowerBound), logHi = Foundation.log(ratio.upperBound)
    for _ in 0..<10 {
        let target = area * rng.uniform(scale.lowerBound, scale.upperBound)
        let aspect = Foundation.exp(rng.uniform(logLo, logHi))
        let cw = Int((target * aspect).squareRoot().rounded()), ch = Int((target / aspect).squareRoot().rounded())
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            return (rng.int(below: h - ch + 1), rng.int(below: w - cw + 1), ch, cw)
        }
    }
    let inRatio = Float(w) / Float(h)
    var cw = w, ch = h
    if inRatio < ratio.lowerBound { ch = Int((Float(w) / ratio.lowerBound).rounded()) }
    else if inRatio > ratio.upperBound { cw = Int((Float(h) * ratio.upperBound).rounded()) }
    return ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

func randomResizedCrop(_ img: Image, size: Int, scale: ClosedRange<Float>, ratio: ClosedRange<Float>, _ rng: inout RNG) -> Image {
    let box = cropBox(height: img.height, width: img.width, scale: scale, ratio: ratio, &rng)
    return resizedCrop(img, box: box, size: size)
}

/// Bilinear resize of a crop (align_corners = false: sample at half-pixel centres).
func resizedCrop(_ img: Image, box: (top: Int, left: Int, height: Int, width: Int), size: Int) -> Image {
    var out = [Float](repeating: 0, count: img.channels * size * size)
    let sy = Float(box.height) / Float(size), sx = Float(box.width) / Float(size)
    for y in 0..<size {
        let fy = Swift.min(Swift.max((Float(y) + 0.5) * sy - 0.5, 0), Float(box.height - 1))
        let y0 = Int(fy), y1 = Swift.min(y0 + 1, box.height - 1), wy = fy - Float(y0)
        for x in 0..<size {
            let fx = Swift.min(Swift.max((Float(x) + 0.5) * sx - 0.5, 0), Float(box.width - 1))
            let x0 = Int(fx), x1 = Swift.min(x0 + 1, box.width - 1), wx = fx - Float(x0)
            for c in 0..<img.channels {
                let a = img.at(c, box.top + y0, box.left + x0), b = img.at(c, box.top + y0, box.left + x1)
                let d = img.at(c, box.top + y1, box.left + x0), e = img.at(c, box.top + y1, box.left + x1)
                out[(c * size + y) * size + x] = (a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy
            }
        }
    }
    return Image(channels: img.channels, height: size, width: size, data: out)
}

func flipped(_ img: Image) -> Image {
    var out = img
    for c in 0..<img.channels { for y in 0..<img.height { for x in 0..<img.width {
        out.data[(c * img.height + y) * img.width + x] = img.at(c, y, img.width - 1 - x)
    } } }
    return out
}

func luma(_ img: Image) -> [Float] {
    let n = img.height * img.width
    if img.channels == 1 { return img.data }
    return (0..<n).map { 0.299 * img.data[$0] + 0.587 * img.data[n + $0] + 0.114 * img.data[2 * n + $0] }
}

enum BlendTarget { case mean, gray }

/// `f·x + (1 − f)·target`, clamped to [0, 1]: black (brightness), the mean gray level
/// (contrast) or the grayscale image (saturation), as torchvision's adjust_* functions.
func blend(_ img: Image, with target: BlendTarget?, factor f: Float) -> Image {
    var out = img
    let n = img.height * img.width
    let g = target == nil ? [] : luma(img)
    let m = target == .mean ? g.reduce(0, +) / Float(n) : 0
    for c in 0..<img.channels { for i in 0..<n {
        let other: Float = target == nil ? 0 : (target == .mean ? m : g[i])
        out.data[c * n + i] = Swift.min(Swift.max(f * img.data[c * n + i] + (1 - f) * other, 0), 1)
    } }
    return out
}

/// Rotates hue by `shift` (a fraction of the colour circle) through HSV.
public func hueShift(_ img: Image, _ shift: Float) -> Image {
    var out = img
    let n = img.height * img.width
    for i in 0..<n {
        let r = img.data[i], g = img.data[n + i], b = img.data[2 * n + i]
        let mx = Swift.max(r, g, b), mn = Swift.min(r, g, b), d = mx - mn
        var h: Float = 0
        if d > 0 {
            if mx == r { h = ((g - b) / d).truncatingRemainder(dividingBy: 6) }
            else if mx == g { h = (b - r) / d + 2 }
            else { h = (r - g) / d + 4 }
            h /= 6
        }
        h = (h + shift).truncatingRemainder(dividingBy: 1)
        if h < 0 { h += 1 }
        let s = mx > 0 ? d / mx : 0, v = mx
        let k = { (m: Float) -> Float in
            let kk = (m + h * 6).truncatingRemainder(dividingBy: 6)
            return v - v * s * Swift.max(0, Swift.min(kk, 4 - kk, 1))
        }
        out.data[i] = k(5); out.data[n + i] = k(3); out.data[2 * n + i] = k(1)
    }
    return out
}

/// Separable Gaussian blur with reflect padding.
func blurred(_ img: Image, kernel: Int, sigma: Float) -> Image {
    let r = kernel / 2
    var w = (-r...r).map { Foundation.exp(-Float($0 * $0) / (2 * sigma * sigma)) }
    let total = w.reduce(0, +)
    w = w.map { $0 / total }
    func reflect(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i) }
    var tmp = img, out = img
    for c in 0..<img.channels { for y in 0..<img.height { for x in 0..<img.width {
        var acc: Float = 0
        for k in -r...r { acc += w[k + r] * img.at(c, y, reflect(x + k, img.width)) }
        tmp.data[(c * img.height + y) * img.width + x] = acc
    } } }
    for c in 0..<img.channels { for y in 0..<img.height { for x in 0..<img.width {
        var acc: Float = 0
        for k in -r...r { acc += w[k + r] * tmp.at(c, reflect(y + k, img.height), x) }
        out.data[(c * img.height + y) * img.width + x] = acc
    } } }
    return out
}
