import Engine
import Foundation
import NN

/// One reference workload: a tag and a function that times its variants.
struct BenchWorkload {
    let tag: String
    let run: (_ quick: Bool) -> [(String, [String: Any])]
}

/// A container module whose children are named by their properties.
final class Parts: Module {
    let backbone: Sequential?, head: Linear?, projector: Sequential?, predictor: Sequential?
    let enc: Sequential?, mu: Linear?, logvar: Linear?, dec: Sequential?
    init(backbone: Sequential? = nil, head: Linear? = nil, projector: Sequential? = nil, predictor: Sequential? = nil,
         enc: Sequential? = nil, mu: Linear? = nil, logvar: Linear? = nil, dec: Sequential? = nil) {
        (self.backbone, self.head, self.projector, self.predictor) = (backbone, head, projector, predictor)
        (self.enc, self.mu, self.logvar, self.dec) = (enc, mu, logvar, dec)
    }
}

/// torch_reference.py's fmnist_backbone: conv-BN-ReLU ×4 (strides 1, 2, 2, 2) → GAP → 256.
func fmnistBackbone(rng: inout RNG) -> Sequential {
    var layers: [any UnaryLayer] = []
    for (cin, cout, s) in [(1, 32, 1), (32, 64, 2), (64, 128, 2), (128, 256, 2)] {
        layers += [Conv2d(cin, cout, kernel: 3, stride: s, padding: 1, bias: false, rng: &rng), BatchNorm(cout), ReLU()]
    }
    return Sequential(layers + [GlobalAvgPool()])
}

func sgd(_ m: Module) -> SGD {
    SGD(groups: m.parameterGroups(learningRate: 0.05, weightDecay: 5e-4), momentum: 0.9)
}

func adam(_ m: Module, lr: Float) -> Adam { Adam(groups: m.parameterGroups(learningRate: lr, weightDecay: 0)) }

func negativeCosine(_ p: Tensor, _ z: Tensor) -> Tensor {
    (p.l2Normalized(axis: 1) * z.l2Normalized(axis: 1)).sum(axis: 1).mean() * -1
}

let benchWorkloads: [BenchWorkload] = [
    BenchWorkload(tag: "R1") { quick in
        var out: [(String, [String: Any])] = []
        for (m, n, k) in [(1024, 1024, 1024), (256, 4096, 1024), (256, 1024, 4096)] {
            var rng = RNG(seed: 0)
            let a = Tensor.randn([m, k], rng: &rng), b = Tensor.randn([k, n], rng: &rng), c = Tensor.zeros([m, n])
            var r = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 30) {
                gemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
            }
            r["gflops"] = 2.0 * Double(m * n * k) / ((r["ms_median"] as! Double) * 1e-3) / 1e9
            out.append(("R1 sgemm \(m)x\(n)x\(k)", r))
        }
        return out
    },
    BenchWorkload(tag: "R2") { quick in
        var rng = RNG(seed: 0)
        let model = Parts(backbone: fmnistBackbone(rng: &rng), head: Linear(256, 10, rng: &rng))
        let opt = sgd(model)
        let x = Tensor.randn([256, 1, 28, 28], rng: &rng), y = (0..<256).map { _ in rng.int(below: 10) }
        var train = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 20) {
            model.zeroGrad()
            crossEntropy(model.head!(model.backbone!(x)), labels: y).backward()
            opt.step()
        }
        train["images_per_s"] = 256 / ((train["ms_median"] as! Double) * 1e-3)
        model.eval()
        var infer = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 20) {
            _ = withoutGradients { model.head!(model.backbone!(x)) }
        }
        infer["images_per_s"] = 256 / ((infer["ms_median"] as! Double) * 1e-3)
        return [("R2 convnet-fmnist train b256", train), ("R2 convnet-fmnist infer b256", infer)]
    },
    BenchWorkload(tag: "R3") { quick in
        var rng = RNG(seed: 0)
        let model = Parts(
            backbone: fmnistBackbone(rng: &rng),
            projector: Sequential([Linear(256, 512, bias: false, rng: &rng), BatchNorm(512), ReLU(),
                                   Linear(512, 512, bias: false, rng: &rng), BatchNorm(512)]),
            predictor: Sequential([Linear(512, 128, bias: false, rng: &rng), BatchNorm(128), ReLU(), Linear(128, 512, rng: &rng)]))
        let opt = sgd(model)
        let x1 = Tensor.randn([256, 1, 28, 28], rng: &rng), x2 = Tensor.randn([256, 1, 28, 28], rng: &rng)
        var r = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 20) {
            model.zeroGrad()
            let z1 = model.projector!(model.backbone!(x1)), z2 = model.projector!(model.backbone!(x2))
            let p1 = model.predictor!(z1), p2 = model.predictor!(z2)
            let loss = (negativeCosine(p1, z2.detached()) + negativeCosine(p2, z1.detached())) * 0.5
            loss.backward()
            opt.step()
        }
        r["images_per_s"] = 256 / ((r["ms_median"] as! Double) * 1e-3)
        return [("R3 simsiam-fmnist train 2x256", r)]
    },
    BenchWorkload(tag: "R4") { quick in
        var rng = RNG(seed: 0)
        let backbone = ResNet18(rng: &rng), head = Linear(512, 10, rng: &rng)
        let model = Parts(head: head)
        let groups = backbone.parameterGroups(learningRate: 0.05, weightDecay: 5e-4, prefix: "backbone.")
            + model.parameterGroups(learningRate: 0.05, weightDecay: 5e-4)
        let opt = SGD(groups: groups, momentum: 0.9)
        let x = Tensor.randn([128, 3, 32, 32], rng: &rng), y = (0..<128).map { _ in rng.int(below: 10) }
        var train = timeSteps(warmup: quick ? 1 : 2, iters: quick ? 1 : 5) {
            backbone.zeroGrad(); head.zeroGrad()
            crossEntropy(head(backbone(x)), labels: y).backward()
            opt.step()
        }
        train["images_per_s"] = 128 / ((train["ms_median"] as! Double) * 1e-3)
        backbone.eval()
        let xi = Tensor.randn([256, 3, 32, 32], rng: &rng)
        var infer = timeSteps(warmup: quick ? 1 : 2, iters: quick ? 1 : 5) { _ = withoutGradients { head(backbone(xi)) } }
        infer["images_per_s"] = 256 / ((infer["ms_median"] as! Double) * 1e-3)
        return [("R4 resnet18-cifar train b128", train), ("R4 resnet18-cifar infer b256", infer)]
    },
    BenchWorkload(tag: "R5") { quick in
        var rng = RNG(seed: 0)
        let model = Parts(enc: Sequential([Linear(784, 512, rng: &rng), ReLU(), Linear(512, 256, rng: &rng), ReLU()]),
                          mu: Linear(256, 32, rng: &rng), logvar: Linear(256, 32, rng: &rng),
                          dec: Sequential([Linear(32, 256, rng: &rng), ReLU(), Linear(256, 512, rng: &rng), ReLU(), Linear(512, 784, rng: &rng)]))
        let opt = adam(model, lr: 1e-3)
        let x = Tensor.uniform([128, 784], rng: &rng)
        var noise = rng.derive("noise")
        var r = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 100) {
            model.zeroGrad()
            let h = model.enc!(x)
            let mu = model.mu!(h), logvar = model.logvar!(h)
            let z = mu + Tensor.randn(mu.shape, rng: &noise) * (logvar * 0.5).exp()
            let rec = binaryCrossEntropyWithLogits(model.dec!(z), targets: x, reduction: .sum) / 128
            let kl = (1 + logvar - mu * mu - logvar.exp()).sum() * (-0.5 / 128)
            (rec + kl).backward()
            opt.step()
        }
        r["images_per_s"] = 128 / ((r["ms_median"] as! Double) * 1e-3)
        return [("R5 vae-mlp train b128 (Adam)", r)]
    },
    BenchWorkload(tag: "R6") { quick in
        var rng = RNG(seed: 0)
        let model = Parts(enc: factorVAEEncoder(latents: 10, rng: &rng), dec: factorVAEDecoder(latents: 10, rng: &rng))
        let opt = adam(model, lr: 1e-4)
        let x = Tensor.uniform([64, 1, 64, 64], rng: &rng)
        for i in 0..<x.count { x.pointer[i] = x.pointer[i] > 0.9 ? 1 : 0 }
        var noise = rng.derive("noise")
        var r = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 20) {
            model.zeroGrad()
            let h = model.enc!(x)
            let mu = h.slice(axis: 1, 0..<10), logvar = h.slice(axis: 1, 10..<20)
            let z = mu + Tensor.randn(mu.shape, rng: &noise) * (logvar * 0.5).exp()
            let rec = binaryCrossEntropyWithLogits(model.dec!(z), targets: x, reduction: .sum) / 64
            let kl = (1 + logvar - mu * mu - logvar.exp()).sum() * (-0.5 / 64)
            (rec + kl).backward()
            opt.step()
        }
        r["images_per_s"] = 64 / ((r["ms_median"] as! Double) * 1e-3)
        return [("R6 dsprites conv-VAE train b64 (Adam)", r)]
    },
]
