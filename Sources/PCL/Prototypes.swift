import Engine
import Evaluation
import Foundation

/// One clustering of the E-step: K prototypes c_j = μ_j/‖μ_j‖ [K, d], their concentrations
/// φ_j, and the cluster of every training image.
public struct Prototypes {
    public let centroids: Tensor
    public let concentration: [Float]
    public let assignments: [Int]
    /// Clusters with no member after the last assignment.
    public let empty: Int
    public var count: Int { concentration.count }

    public init(centroids: Tensor, concentration: [Float], assignments: [Int], empty: Int) {
        (self.centroids, self.concentration, self.assignments, self.empty) = (centroids, concentration, assignments, empty)
    }
}

/// PCL's concentration (Li et al. Eq. 12, as salesforce/PCL computes it): for cluster c
/// with Z_c ≥ 2 members at distances ‖v′_z − μ_c‖, φ_c = Σ_z ‖v′_z − μ_c‖ / (Z_c·ln(Z_c + α));
/// a cluster with at most one member takes the largest φ of the others; then φ is clipped
/// to its [10th, 90th] percentiles (linear interpolation, numpy's default) and rescaled to
/// mean τ. `distances[i]` is point i's distance to its own centroid `assignments[i]`.
public func concentration(distances: [Float], assignments: [Int], clusters k: Int, alpha: Double, temperature τ: Double) -> [Float] {
    var sum = [Double](repeating: 0, count: k), members = [Int](repeating: 0, count: k)
    for (d, a) in zip(distances, assignments) { sum[a] += Double(d); members[a] += 1 }
    var φ = (0..<k).map { members[$0] > 1 ? sum[$0] / (Double(members[$0]) * Foundation.log(Double(members[$0]) + alpha)) : 0 }
    let largest = φ.max() ?? 0
    for c in 0..<k where members[c] <= 1 { φ[c] = largest }
    let (low, high) = (percentile(φ, 10), percentile(φ, 90))
    φ = φ.map { Swift.min(Swift.max($0, low), high) }
    let mean = φ.reduce(0, +) / Double(k)
    return φ.map { Float(τ * $0 / mean) }
}

/// The q-th percentile of `values`, interpolating linearly between order statistics
/// (numpy.percentile's default).
public func percentile(_ values: [Double], _ q: Double) -> Double {
    let s = values.sorted(), position = q / 100 * Double(s.count - 1)
    let i = Int(position.rounded(.down)), t = position - Double(i)
    return i + 1 < s.count ? s[i] + t * (s[i + 1] - s[i]) : s[i]
}

/// The E-step for one K: k-means (k-means++ seeding, `restarts` runs, at most `iterations`
/// Lloyd steps) on the l2-normalized momentum features, then φ from the un-normalized
/// centroids (or φ ≡ τ when `estimated` is false) and prototypes normalized afterwards.
public func estimatePrototypes(_ features: Features, clusters k: Int, restarts: Int, iterations: Int, alpha: Double,
                               temperature τ: Float, estimated: Bool, rng: RNG) throws -> Prototypes {
    let (n, d) = (features.count, features.dimension)
    let result = try kMeans(features.values, count: n, dimension: d, k: k, restarts: restarts, maxIterations: iterations, rng: rng)
    var distances = [Float](repeating: 0, count: n), members = [Int](repeating: 0, count: k)
    for i in 0..<n {
        let a = result.assignments[i]
        var s: Float = 0
        for t in 0..<d { let e = features.values[i * d + t] - result.centroids[a * d + t]; s += e * e }
        distances[i] = s.squareRoot()
        members[a] += 1
    }
    let φ = estimated ? concentration(distances: distances, assignments: result.assignments, clusters: k, alpha: alpha, temperature: Double(τ))
                      : [Float](repeating: τ, count: k)
    let centroids = Tensor(result.centroids, shape: [k, d]).l2Normalized(axis: 1).detached()
    return Prototypes(centroids: centroids, concentration: φ, assignments: result.assignments, empty: members.filter { $0 == 0 }.count)
}

/// ProtoNCE for one clustering with the full softmax over its K prototypes (no sampled
/// negatives): logits_ij = q_i·c_j / φ_j, L = (1/B) Σ_i −log softmax(logits_i)_{s(i)}, s(i)
/// = the cluster of sample i. Prototypes and φ are constants.
public func protoNCE(_ q: Tensor, _ prototypes: Prototypes, clusters: [Int]) -> Tensor {
    let logits = q.matmul(prototypes.centroids.transposed()) / Tensor(prototypes.concentration, shape: [prototypes.count])
    return crossEntropy(logits, labels: clusters)
}
