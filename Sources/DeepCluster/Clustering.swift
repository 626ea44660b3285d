import Engine
import Evaluation
import Foundation

/// DeepCluster's k-means, as facebookresearch/deepcluster runs faiss: the centroids start at
/// k distinct random points, then `iterations` Lloyd steps (assign each point to its nearest
/// centroid, move each centroid to its points' mean); after each update an empty cluster is
/// re-seeded by splitting a populated one (`splitEmptyClusters`). The final assignment uses
/// the final centroids and can still leave a cluster empty. Returns the assignments, the
/// centroids [k, d] and how many splits were made.
public func deepClusterKMeans(_ x: [Float], count n: Int, dimension d: Int, k: Int, iterations: Int, rng: RNG) -> (assignments: [Int], centroids: [Float], splits: Int) {
    precondition(k >= 1 && k <= n && x.count == n * d, "deepClusterKMeans: k = \(k) on \(n) points of dimension \(d)")
    var g = rng
    var centroids = g.permutation(n).prefix(k).flatMap { x[($0 * d)..<(($0 + 1) * d)] }
    var splits = 0
    var split = rng.derive("split")
    for _ in 0..<iterations {
        let assignment = nearestCentroids(x, count: n, dimension: d, centroids: centroids, k: k)
        var sums = [Double](repeating: 0, count: k * d), counts = [Double](repeating: 0, count: k)
        for i in 0..<n { counts[assignment[i]] += 1 }
        // Each thread sums its own coordinates over all points, in point order.
        x.withUnsafeBufferPointer { xp in sums.withUnsafeMutableBufferPointer { sp in
            let (xp, sp) = (xp.baseAddress!, sp.baseAddress!)
            Threads.parallelFor(d, grain: 8) { _, dims in
                for i in 0..<n { let a = assignment[i]; for t in dims { sp[a * d + t] += Double(xp[i * d + t]) } }
            }
        } }
        for j in 0..<k where counts[j] > 0 { for t in 0..<d { centroids[j * d + t] = Float(sums[j * d + t] / counts[j]) } }
        splits += splitEmptyClusters(&centroids, counts: &counts, dimension: d, points: n, rng: &split)
    }
    return (nearestCentroids(x, count: n, dimension: d, centroids: centroids, k: k), centroids, splits)
}

/// faiss's `split_clusters` (Clustering.cpp), the heuristic of DeepCluster §3.3: for each
/// empty cluster i, scan the clusters cyclically from 0 and take cluster j with probability
/// (size_j − 1)/(n − k); copy j's centroid to i, scale the coordinates by (1 + ε, 1 − ε, …)
/// for i and (1 − ε, 1 + ε, …) for j (ε = 1/1024), and split j's count between the two.
/// Returns the number of splits.
public func splitEmptyClusters(_ centroids: inout [Float], counts: inout [Double], dimension d: Int, points n: Int, rng: inout RNG) -> Int {
    let k = counts.count, eps: Float = 1 / 1024
    guard n > k, counts.contains(where: { $0 > 1 }) else { return 0 }
    var splits = 0
    for i in 0..<k where counts[i] == 0 {
        var j = 0
        while rng.uniformDouble() >= (counts[j] - 1) / Double(n - k) { j = (j + 1) % k }
        for t in 0..<d {
            centroids[i * d + t] = centroids[j * d + t] * (t % 2 == 0 ? 1 + eps : 1 - eps)
            centroids[j * d + t] *= t % 2 == 0 ? 1 - eps : 1 + eps
        }
        counts[i] = counts[j] / 2   // faiss keeps fractional counts
        counts[j] -= counts[i]
        splits += 1
    }
    return splits
}

/// DeepCluster's `UnifLabelSampler`: `count` training indices drawn uniformly over the
/// non-empty clusters. Each gets a quota q = ⌊count / non-empty⌋ + 1, drawn from its members
/// without replacement (with replacement when it has at most q members); the lists are
/// concatenated, shuffled and cut to `count`. Equivalent to weighting each image's loss by
/// 1/|its cluster|.
public func uniformOverClusters(_ assignments: [Int], clusters k: Int, count: Int, rng: RNG) -> [Int] {
    var members = [[Int]](repeating: [], count: k)
    for (i, a) in assignments.enumerated() { members[a].append(i) }
    let nonEmpty = members.filter { !$0.isEmpty }
    let quota = count / max(nonEmpty.count, 1) + 1
    var g = rng, out: [Int] = []
    for list in nonEmpty {
        if list.count <= quota {
            out += (0..<quota).map { _ in list[g.int(below: list.count)] }
        } else {
            out += g.permutation(list.count).prefix(quota).map { list[$0] }
        }
    }
    return Array(g.permutation(out.count).prefix(count).map { out[$0] })
}
