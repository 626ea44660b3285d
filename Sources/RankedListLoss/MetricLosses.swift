import Engine
import Foundation

// Deep-metric-learning losses on a batch of embeddings with class labels
// (docs/papers/ranked-list-loss.md). Every loss l2-normalizes its input, so distances of
// unit vectors lie in [0, 2]; mining decisions and weights are read from the current values
// and enter the graph as constants, as in pytorch-metric-learning (PML).

/// Euclidean distances of the l2-normalized rows, d_ij = √(max(2 − 2 u_i·u_j, 0) + 10⁻¹²)
/// (the 10⁻¹² keeps the gradient finite on the diagonal, which every loss masks out). With
/// `detachGallery` row i is query i against constant gallery rows: the gradient reaches u_i
/// only through row i.
public func pairwiseDistances(_ u: Tensor, detachGallery: Bool = false) -> Tensor {
    u.matmul((detachGallery ? u.detached() : u).transposed()).affine(-2, 2).clamp(min: 0).affine(1, 1e-12).sqrt()
}

/// A [n, n] constant from a per-pair rule.
func pairMask(_ n: Int, _ keep: (Int, Int) -> Bool) -> Tensor {
    var m = [Float](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n where keep(i, j) { m[i * n + j] = 1 } }
    return Tensor(m, shape: [n, n])
}

/// A zero loss that still reaches the embeddings (PML's `zero_loss`): backward() gives 0.
func zeroLoss(_ e: Tensor) -> Tensor { e.sum() * 0 }

/// The mean of the terms of `losses` [n, n] that `mask` keeps and whose value is > 0 (PML's
/// AvgNonZeroReducer); zero when none is.
func averageNonZero(_ losses: Tensor, mask: Tensor, embeddings e: Tensor) -> Tensor {
    let kept = losses * mask
    let count = kept.array.filter { $0 > 0 }.count
    return count == 0 ? zeroLoss(e) : kept.sum() / Float(count)
}

// MARK: - Ranked List Loss

/// How the Ranked List Loss is differentiated (the value is the same).
public enum RankedListGradient: String, Codable, Sendable {
    /// The authors' Caffe layer: the weights are constants and each query's loss moves only
    /// the query (gallery detached).
    case authors
    /// Plain autodiff through the weights and both ends of every pair (PML's RankedListLoss).
    case autodiff
}

/// The Ranked List Loss (Wang et al., CVPR 2019) of a batch. For query i of class c:
/// positives j ≠ i of class c farther than α − m and negatives closer than α are the
/// non-trivial pairs; each is weighted w = exp(T_p·(d − (α − m))) or exp(T_n·(α − d)) and
/// normalized within its set by Σ_j (w_ij + 10⁻⁵) over the whole row (PML's normalizer);
/// L_i = Σ_P* ŵ (d − (α − m)) + λ Σ_N* ŵ (α − d); the loss is the mean over the n queries.
/// λ = imbalance / (1 − imbalance) and a factor 1 − imbalance give PML's parameterization.
public func rankedListLoss(_ embeddings: Tensor, labels: [Int], alpha: Float, margin: Float, tn: Float, tp: Float = 0,
                           lambda: Float = 1, gradient: RankedListGradient = .authors) -> Tensor {
    let n = labels.count
    precondition(embeddings.rank == 2 && embeddings.shape[0] == n, "rankedListLoss: \(n) labels for embeddings \(embeddings.shape)")
    let u = embeddings.l2Normalized(), inner = alpha - margin, eps: Float = 1e-5
    let d = pairwiseDistances(u, detachGallery: gradient == .authors), dv = d.array
    let positives = pairMask(n) { i, j in i != j && labels[i] == labels[j] && dv[i * n + j] > inner }
    let negatives = pairMask(n) { i, j in labels[i] != labels[j] && dv[i * n + j] < alpha }
    switch gradient {
    case .autodiff:
        let wp = d.affine(tp, -tp * inner).exp() * positives, wn = d.affine(-tn, tn * alpha).exp() * negatives
        let lp = (wp * d.affine(1, -inner)).sum(axis: 1) / wp.sum(axis: 1).affine(1, Float(n) * eps)
        let ln = (wn * d.affine(-1, alpha)).sum(axis: 1) / wn.sum(axis: 1).affine(1, Float(n) * eps)
        return (lp + ln * lambda).mean()
    case .authors:
        // Normalized weights as constants: L = (1/n) Σ_ij c_ij d_ij + constant.
        let mp = positives.array, mn = negatives.array
        var c = [Float](repeating: 0, count: n * n), constant = 0.0
        for i in 0..<n {
            let row = i * n
            var sp = Double(n) * Double(eps), sn = sp
            for j in 0..<n {
                if mp[row + j] > 0 { sp += Foundation.exp(Double(tp) * Double(dv[row + j] - inner)) }
                if mn[row + j] > 0 { sn += Foundation.exp(Double(tn) * Double(alpha - dv[row + j])) }
            }
            for j in 0..<n {
                if mp[row + j] > 0 {
                    let w = Foundation.exp(Double(tp) * Double(dv[row + j] - inner)) / sp
                    c[row + j] = Float(w); constant -= w * Double(inner)
                }
                if mn[row + j] > 0 {
                    let w = Double(lambda) * Foundation.exp(Double(tn) * Double(alpha - dv[row + j])) / sn
                    c[row + j] = Float(-w); constant += w * Double(alpha)
                }
            }
        }
        return ((d * Tensor(c, shape: [n, n])).sum() + Float(constant)) / Float(n)
    }
}

// MARK: - Baselines

/// Contrastive loss (Hadsell et al. 2006) in PML's form: max(0, d − m₊) over every ordered
/// positive pair and max(0, m₋ − d) over every negative pair, each averaged over its
/// non-zero terms, summed.
public func contrastiveLoss(_ embeddings: Tensor, labels: [Int], positiveMargin: Float = 0, negativeMargin: Float = 1) -> Tensor {
    let n = labels.count, d = pairwiseDistances(embeddings.l2Normalized())
    let pos = averageNonZero(d.affine(1, -positiveMargin).relu(), mask: pairMask(n) { $0 != $1 && labels[$0] == labels[$1] }, embeddings: embeddings)
    let neg = averageNonZero(d.affine(-1, negativeMargin).relu(), mask: pairMask(n) { labels[$0] != labels[$1] }, embeddings: embeddings)
    return pos + neg
}

/// Which triplets (anchor, positive, negative) the triplet loss uses.
public enum TripletMining: String, Codable, Sendable {
    /// Every triplet whose negative is farther than the positive but within the margin,
    /// 0 < d_an − d_ap ≤ margin (FaceNet; PML's TripletMarginMiner "semihard").
    case semihard
    /// Per anchor its farthest positive and nearest negative (Hermans et al. 2017; PML's
    /// BatchHardMiner).
    case batchHard = "batch_hard"
    /// Every triplet.
    case all
}

/// The triplets of a batch under `mining`, from the distances' values.
func mineTriplets(_ dv: [Float], labels: [Int], mining: TripletMining, margin: Float) -> [(a: Int, p: Int, n: Int)] {
    let n = labels.count
    var out: [(a: Int, p: Int, n: Int)] = []
    for a in 0..<n {
        let pos = (0..<n).filter { $0 != a && labels[$0] == labels[a] }, neg = (0..<n).filter { labels[$0] != labels[a] }
        switch mining {
        case .batchHard:
            guard let p = pos.max(by: { dv[a * n + $0] < dv[a * n + $1] }), let q = neg.min(by: { dv[a * n + $0] < dv[a * n + $1] }) else { continue }
            out.append((a, p, q))
        case .semihard, .all:
            for p in pos { for q in neg {
                let gap = dv[a * n + q] - dv[a * n + p]
                if mining == .all || (gap > 0 && gap <= margin) { out.append((a, p, q)) }
            } }
        }
    }
    return out
}

/// Triplet margin loss max(0, d_ap − d_an + margin) on Euclidean distances of unit vectors
/// over the mined triplets, averaged over its non-zero terms (PML's TripletMarginLoss).
public func tripletLoss(_ embeddings: Tensor, labels: [Int], margin: Float, mining: TripletMining) -> Tensor {
    let n = labels.count, d = pairwiseDistances(embeddings.l2Normalized())
    let triplets = mineTriplets(d.array, labels: labels, mining: mining, margin: margin)
    guard !triplets.isEmpty else { return zeroLoss(embeddings) }
    let flat = d.reshaped([n * n])
    let terms = (flat.indexSelect(axis: 0, triplets.map { $0.a * n + $0.p }) - flat.indexSelect(axis: 0, triplets.map { $0.a * n + $0.n })).affine(1, margin).relu()
    let count = terms.array.filter { $0 > 0 }.count
    return count == 0 ? zeroLoss(embeddings) : terms.sum() / Float(count)
}

/// Multi-Similarity loss (Wang et al., CVPR 2019) on cosine similarities S, per anchor
/// (1/α) log(1 + Σ_P exp(−α(S − λ))) + (1/β) log(1 + Σ_N exp(β(S − λ))), mean over all
/// anchors. With `epsilon` the pairs pass the MS miner first: a positive is kept when
/// S_ap − ε < max_n S_an, a negative when S_an + ε > min_p S_ap (PML's MultiSimilarityMiner);
/// without it every pair counts.
public func multiSimilarityLoss(_ embeddings: Tensor, labels: [Int], alpha: Float = 2, beta: Float = 50, base: Float = 0.5, epsilon: Float? = 0.1) -> Tensor {
    let n = labels.count, u = embeddings.l2Normalized(), s = u.matmul(u.transposed()), sv = s.array
    var hardestNegative = [Float](repeating: -.infinity, count: n), easiestPositive = [Float](repeating: .infinity, count: n)
    for i in 0..<n { for j in 0..<n where j != i {
        if labels[i] == labels[j] { easiestPositive[i] = Swift.min(easiestPositive[i], sv[i * n + j]) }
        else { hardestNegative[i] = Swift.max(hardestNegative[i], sv[i * n + j]) }
    } }
    let pos = pairMask(n) { i, j in i != j && labels[i] == labels[j] && epsilon.map { sv[i * n + j] - $0 < hardestNegative[i] } ?? true }
    let neg = pairMask(n) { i, j in labels[i] != labels[j] && epsilon.map { sv[i * n + j] + $0 > easiestPositive[i] } ?? true }
    /// (1/scale) log(1 + Σ_kept exp(x)) per row; 0 for a row with nothing kept.
    func softplusSum(_ x: Tensor, _ keep: Tensor, _ scale: Float) -> Tensor {
        let masked = x * keep + keep.affine(1e4, -1e4)   // dropped entries → x − 10⁴: exp underflows to 0
        let rows = keep.sum(axis: 1).array.map { $0 > 0 ? Float(1) : 0 }
        return Tensor.concat([masked, Tensor.zeros([n, 1])], axis: 1).logsumexp(axis: 1) * Tensor(rows, shape: [n]) / scale
    }
    return (softplusSum(s.affine(-alpha, alpha * base), pos, alpha) + softplusSum(s.affine(beta, -beta * base), neg, beta)).mean()
}
