import Datasets
import DeepCluster
import Engine
import Evaluation
import FactorVAE
import Foundation
import LVAE
import NN
import PCL
import RankedListLoss
import Representation
import SimSiam

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
        func step() {
            model.zeroGrad()
            crossEntropy(model.head!(model.backbone!(x)), labels: y).backward()
            opt.step()
        }
        var train = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 20, step)
        train["images_per_s"] = 256 / ((train["ms_median"] as! Double) * 1e-3)
        train.merge(gemmThroughput(of: step, ms: train["ms_median"] as! Double)) { $1 }
        model.eval()
        func forward() { _ = withoutGradients { model.head!(model.backbone!(x)) } }
        var infer = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 20, forward)
        infer["images_per_s"] = 256 / ((infer["ms_median"] as! Double) * 1e-3)
        infer.merge(gemmThroughput(of: forward, ms: infer["ms_median"] as! Double)) { $1 }
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
    BenchWorkload(tag: "R7") { quick in
        // The SimSiam experiment's own step: convnet4-lite (conv-BN-ReLU-maxpool ×4),
        // projector 128→512→512, predictor 512→128→512, two views of 256.
        var rng = RNG(seed: 0)
        let model = SimSiamNetwork(width: .lite, inputChannels: 1, dimension: 512, predictorHidden: 128, withPredictor: true, rng: &rng)
        let opt = sgd(model)
        let x1 = Tensor.randn([256, 1, 28, 28], rng: &rng), x2 = Tensor.randn([256, 1, 28, 28], rng: &rng)
        var r = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 20) {
            model.zeroGrad()
            let (z1, p1) = model(x1), (z2, p2) = model(x2)
            simsiamLoss(p1: p1, p2: p2, z1: z1, z2: z2).backward()
            opt.step()
        }
        r["images_per_s"] = 256 / ((r["ms_median"] as! Double) * 1e-3)
        model.eval()
        let xi = Tensor.randn([1000, 1, 28, 28], rng: &rng)
        var infer = timeSteps(warmup: quick ? 1 : 3, iters: quick ? 3 : 10) { _ = withoutGradients { model.backbone(xi) } }
        infer["images_per_s"] = 1000 / ((infer["ms_median"] as! Double) * 1e-3)
        return [("R7 simsiam convnet4-lite train 2x256", r), ("R7 convnet4-lite features b1000", infer)]
    },
    BenchWorkload(tag: "S1") { quick in
        // The SimCLR experiment's step: convnet4-lite, MLP head 128→128 (BN, ReLU)→64, NT-Xent
        // at τ = 0.5 over two views of 256 (510 negatives per anchor), SGD.
        var rng = RNG(seed: 0)
        let model = ContrastiveNetwork(width: .lite, inputChannels: 1, head: .mlp, hidden: 128, output: 64, rng: &rng)
        let opt = sgd(model)
        let x = Tensor.randn([512, 1, 28, 28], rng: &rng)   // view v of image k is row v·256 + k
        var r = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 20) {
            model.zeroGrad()
            ntXent(model(x), temperature: 0.5).backward()
            opt.step()
        }
        r["images_per_s"] = 256 / ((r["ms_median"] as! Double) * 1e-3)
        return [("S1 simclr convnet4-lite NT-Xent train 2x256", r)]
    },
    BenchWorkload(tag: "P1") { quick in
        // The PCL experiment's M-step: a query and a key view of 256; the key encoder follows
        // the query encoder (m 0.99) and encodes the shuffled batch in 4 BN splits; InfoNCE
        // against a queue of 4096 plus ProtoNCE over three clusterings (50, 100, 200
        // prototypes with their concentrations); SGD; the keys are enqueued.
        var rng = RNG(seed: 0)
        let net = MoCoNetwork(width: .lite, inputChannels: 1, hidden: 128, output: 64, queueSize: 4096, rng: &rng)
        let opt = sgd(net.query)
        let xq = Tensor.randn([256, 1, 28, 28], rng: &rng), xk = Tensor.randn([256, 1, 28, 28], rng: &rng)
        let prototypes = [50, 100, 200].map { k in
            Prototypes(centroids: Tensor.randn([k, 64], rng: &rng).l2Normalized(axis: 1).detached(),
                       concentration: (0..<k).map { _ in 0.1 + 0.2 * rng.uniform() }, assignments: (0..<256).map { _ in rng.int(below: k) }, empty: 0)
        }
        let permutation = rng.permutation(256)
        let r = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 20) {
            net.updateMomentumEncoder(0.99)
            let k = net.keys(xk, splits: 4, permutation: permutation)
            net.zeroGrad()
            let q = splitForward(net.query, xq, splits: 4).l2Normalized(axis: 1)
            let proto = prototypes.map { protoNCE(q, $0, clusters: $0.assignments) }.reduce(Tensor.zeros([]), +) / 3
            (infoNCE(q, keys: k, queue: net.queue, temperature: 0.2) + proto).backward()
            opt.step()
            net.enqueue(k)
        }
        return [("P1 pcl step convnet4-lite 2x256, queue 4096, 3 clusterings, 4 BN splits", r)]
    },
    BenchWorkload(tag: "M1") { quick in
        // The Ranked List Loss experiment's step: MLP 784-512-256-64 on a P×K batch of 5 × 12,
        // RLL (α 1.2, m 0.4, T_n 10) with the authors' gradient (constant weights, gallery
        // detached), Adam.
        var rng = RNG(seed: 0)
        let model = MLP([784, 512, 256, 64], rng: &rng)
        let opt = adam(model, lr: 1e-3)
        let x = Tensor.randn([60, 784], rng: &rng), labels = (0..<60).map { $0 / 12 }
        let r = timeSteps(warmup: quick ? 1 : 10, iters: quick ? 3 : 100) {
            model.zeroGrad()
            rankedListLoss(model(x), labels: labels, alpha: 1.2, margin: 0.4, tn: 10).backward()
            opt.step()
        }
        return [("M1 ranked list loss step mlp 784-512-256-64 b60 (authors' gradient, Adam)", r)]
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
    BenchWorkload(tag: "A1") { quick in
        // SimSiam's grayscale two-view recipe (docs/papers/simsiam.md) on 28×28 images, one core.
        let previous = Threads.count
        Threads.count = 1
        defer { Threads.count = previous }
        var rng = RNG(seed: 0)
        let set = ImageSet(pixels: (0..<(512 * 784)).map { _ in UInt8(rng.int(below: 256)) }, labels: [Int](repeating: 0, count: 512),
                           height: 28, width: 28, channels: 1)
        let aug = benchAugmentation
        let images = (0..<512).map { Image(set, $0) }
        var r = timeSteps(warmup: 1, iters: quick ? 3 : 10) {
            var draw = RNG(seed: 1)
            for img in images { _ = aug(img, rng: &draw) }
        }
        r["views_per_s"] = 512 / ((r["ms_median"] as! Double) * 1e-3)
        return [("A1 augment 28x28 views x512 (1 thread)", r)]
    },
    BenchWorkload(tag: "A2") { quick in
        // The R3 step fed by the prefetching loader: time spent waiting for a batch.
        var rng = RNG(seed: 0)
        let set = ImageSet(pixels: (0..<(4096 * 784)).map { _ in UInt8(rng.int(below: 256)) }, labels: [Int](repeating: 0, count: 4096),
                           height: 28, width: 28, channels: 1)
        let model = Parts(backbone: fmnistBackbone(rng: &rng),
                          projector: Sequential([Linear(256, 512, bias: false, rng: &rng), BatchNorm(512), ReLU(), Linear(512, 512, bias: false, rng: &rng), BatchNorm(512)]),
                          predictor: Sequential([Linear(512, 128, bias: false, rng: &rng), BatchNorm(128), ReLU(), Linear(128, 512, rng: &rng)]))
        let opt = sgd(model)
        let batches = ShuffledSampler(count: set.count, batchSize: 256, rng: RNG(seed: 1)).batches(epoch: 0).prefix(quick ? 3 : 12)
        let loader = PrefetchLoader(batches: Array(batches)) { b, idx in twoViewBatch(set, idx, rng: RNG(seed: 2).derive(UInt64(b))) }
        var waited = 0.0, stepped = 0.0, steps = 0
        while true {
            let t0 = DispatchTime.now().uptimeNanoseconds
            guard let (x1, x2) = loader.next() else { break }
            let t1 = DispatchTime.now().uptimeNanoseconds
            model.zeroGrad()
            let z1 = model.projector!(model.backbone!(x1)), z2 = model.projector!(model.backbone!(x2))
            let loss = (negativeCosine(model.predictor!(z1), z2.detached()) + negativeCosine(model.predictor!(z2), z1.detached())) * 0.5
            loss.backward()
            opt.step()
            let t2 = DispatchTime.now().uptimeNanoseconds
            if steps > 0 { waited += Double(t1 - t0) / 1e6; stepped += Double(t2 - t1) / 1e6 }   // the first batch has nothing to overlap
            steps += 1
        }
        let n = max(steps - 1, 1)
        return [("A2 R3 step fed by the loader", ["ms_median": (waited + stepped) / Double(n), "iters": n,
                                                   "wait_ms_per_step": waited / Double(n), "step_ms": stepped / Double(n),
                                                   "starved_fraction": waited / max(waited + stepped, 1e-9)])]
    },
] + clusteringWorkloads + disentanglementWorkloads

/// The clustering family's per-epoch extras (C1, C2): the Hungarian step of one NAT batch and
/// DeepCluster's PCA-whitening plus k-means over a Fashion-MNIST-sized feature set.
let clusteringWorkloads: [BenchWorkload] = [
    BenchWorkload(tag: "C1") { quick in
        var rng = RNG(seed: 0)
        let cost = (0..<256).map { _ in (0..<256).map { _ in Double(rng.normal()) } }
        let r = timeSteps(warmup: quick ? 1 : 3, iters: quick ? 3 : 20) { _ = hungarian(cost) }
        return [("C1 hungarian 256x256", r)]
    },
    BenchWorkload(tag: "C2") { quick in
        var rng = RNG(seed: 0)
        let (n, d) = (quick ? 6000 : 60000, 128)
        let x = (0..<(n * d)).map { _ in rng.normal() }
        let r = timeSteps(warmup: quick ? 0 : 1, iters: quick ? 1 : 3) {
            let pca = PCA(x, count: n, dimension: d, components: 64, whiten: true, eps: 1e-5)
            let z = Features(values: pca.transform(x, count: n), count: n, dimension: 64, labels: [Int](repeating: 0, count: n)).l2Normalized()
            _ = deepClusterKMeans(z.values, count: n, dimension: 64, k: 100, iterations: 20, rng: RNG(seed: 1))
        }
        return [("C2 pca-whiten \(n)x128 to 64 + k-means k=100 (20 iterations)", r)]
    },
]

let benchAugmentation = Augmentation([.randomResizedCrop(size: 28, scale: 0.2...1, ratio: 0.75...(4.0 / 3)), .horizontalFlip(p: 0.5),
                                      .colorJitter(brightness: 0.4, contrast: 0.4, saturation: 0, hue: 0, p: 0.8)],
                                     mean: [0.2860], std: [0.3530])

/// Two augmented views of each image, as [B, 1, 28, 28] tensors.
func twoViewBatch(_ set: ImageSet, _ indices: [Int], rng: RNG) -> (Tensor, Tensor) {
    let v = benchAugmentation.viewBatches(set, indices, count: 2, rng: rng)
    return (v[0], v[1])
}

/// FactorVAE's training step as `make reproduce-factorvae` runs it (docs/papers/factorvae.md):
/// the MLP VAE on 32 × 32 binary images with γ TĈ, then the discriminator step on a second
/// batch (R6 is the paper-size conv VAE half alone).
let disentanglementWorkloads: [BenchWorkload] = [
    BenchWorkload(tag: "F1") { quick in
        var rng = RNG(seed: 0)
        let vae = VAE(inputs: 1024, hidden: [256, 128], latents: 10, rng: &rng)
        let critic = discriminator(latents: 10, hidden: [256, 256, 256], rng: &rng)
        let opt = adam(vae, lr: 1e-4), criticOpt = Adam(groups: critic.parameterGroups(learningRate: 1e-4, weightDecay: 0), beta1: 0.5, beta2: 0.9)
        let x = Tensor.uniform([64, 1024], rng: &rng), x2 = Tensor.uniform([64, 1024], rng: &rng)
        for t in [x, x2] { for i in 0..<t.count { t.pointer[i] = t.pointer[i] > 0.9 ? 1 : 0 } }
        var noise = rng.derive("noise")
        var r = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 100) {
            _ = factorVAEStep(vae: vae, discriminator: critic, optimizer: opt, discriminatorOptimizer: criticOpt, x: x, x2: x2, beta: 1, gamma: 40, rng: &noise)
        }
        r["images_per_s"] = 128 / ((r["ms_median"] as! Double) * 1e-3)
        return [("F1 factorvae step mlp-32 b64 + discriminator (Adam x2)", r)]
    },
    // The Ladder VAE's step as `make reproduce-lvae` runs its `lvae` arm (docs/papers/lvae.md):
    // 3 stochastic layers with BatchNorm, the precision-weighted top-down pass, the
    // warm-up-weighted negative ELBO, clipping, Adam.
    BenchWorkload(tag: "F2") { quick in
        var rng = RNG(seed: 0)
        let model = HierarchicalVAE(inputs: 784, latents: [32, 16, 8], widths: [256, 128, 64], batchNorm: true, ladder: true, rng: &rng)
        let opt = Adam(groups: model.parameterGroups(learningRate: 1e-3, weightDecay: 0), eps: 1e-4)
        let x = Tensor.uniform([256, 784], rng: &rng)
        for i in 0..<x.count { x.pointer[i] = x.pointer[i] > 0.7 ? 1 : 0 }
        var noise = rng.derive("noise")
        model.train()
        var r = timeSteps(warmup: quick ? 1 : 5, iters: quick ? 3 : 100) {
            model.zeroGrad()
            model.loss(model.pass(x, rng: &noise), beta: 0.5).backward()
            clipGradients(model.trainableParameters(), maxNorm: 4, maxValue: 0.9)
            opt.step()
        }
        r["images_per_s"] = 256 / ((r["ms_median"] as! Double) * 1e-3)
        return [("F2 ladder vae step 784-256-128-64, latents 32-16-8, BN, b256 (Adam, clipping)", r)]
    },
]
