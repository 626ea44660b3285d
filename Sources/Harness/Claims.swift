import Foundation

public enum Verdict: String, Codable, Sendable { case reproduced, notReproduced = "not reproduced", inconclusive }

/// How a claim's measured number becomes a verdict. Every rule has a margin: within it
/// the verdict is "inconclusive".
public enum ClaimRule: Equatable, Sendable {
    /// measured ≥ value (reproduced above value + margin, not reproduced below value − margin)
    case atLeast(Double, margin: Double)
    case atMost(Double, margin: Double)
    /// measured exceeds another arm's value of the same metric by more than the margin
    case aboveArm(String, margin: Double)
    case belowArm(String, margin: Double)

    public var text: String {
        switch self {
        case let .atLeast(v, m): return "≥ \(fmt(v)) (margin ±\(fmt(m)))"
        case let .atMost(v, m): return "≤ \(fmt(v)) (margin ±\(fmt(m)))"
        case let .aboveArm(a, m): return "above arm '\(a)' by more than \(fmt(m))"
        case let .belowArm(a, m): return "below arm '\(a)' by more than \(fmt(m))"
        }
    }

    /// The verdict for `measured`, given the other arms' values of the same metric.
    public func verdict(_ measured: Double, arms: [String: Double]) -> Verdict {
        guard measured.isFinite else { return .inconclusive }
        switch self {
        case let .atLeast(v, m): return measured >= v + m ? .reproduced : (measured < v - m ? .notReproduced : .inconclusive)
        case let .atMost(v, m): return measured <= v - m ? .reproduced : (measured > v + m ? .notReproduced : .inconclusive)
        case let .aboveArm(a, m):
            guard let o = arms[a] else { return .inconclusive }
            return measured > o + m ? .reproduced : (measured < o - m ? .notReproduced : .inconclusive)
        case let .belowArm(a, m):
            guard let o = arms[a] else { return .inconclusive }
            return measured < o - m ? .reproduced : (measured > o + m ? .notReproduced : .inconclusive)
        }
    }
}

func fmt(_ v: Double) -> String {
    let s = String(format: "%.4g", v)
    return s
}

/// One claim of a paper, checked by a rule on one arm's metric.
public struct Claim {
    public let id: String
    public let paperSetting: String
    public let paperSays: String
    /// Whether the paper's number was verified against the paper (shared/papers tags it).
    public let verified: Bool
    public let ourSetting: String
    public let arm: String, metric: String
    public let rule: ClaimRule

    static let keys = ["id", "paper_setting", "paper_says", "verified", "our_setting", "arm", "metric", "rule"]

    init(_ raw: Any, path: String, index: Int) throws {
        guard let d = raw as? [String: Any] else { throw ConfigError(path, "claims[\(index)]: expected a mapping") }
        if let k = d.keys.sorted().first(where: { !Self.keys.contains($0) }) { throw ConfigError(path, "claims[\(index)]: unknown key '\(k)'") }
        func s(_ k: String) throws -> String {
            guard let v = d[k] as? String else { throw ConfigError(path, "claims[\(index)].\(k): expected a string") }
            return v
        }
        id = try s("id"); paperSetting = try s("paper_setting"); paperSays = try s("paper_says")
        ourSetting = try s("our_setting"); arm = try s("arm"); metric = try s("metric")
        guard let v = d["verified"] as? Bool else { throw ConfigError(path, "claims[\(index)].verified: expected true or false") }
        verified = v
        guard let r = d["rule"] as? [String: Any], r.count >= 1 else { throw ConfigError(path, "claims[\(index)].rule: expected a mapping such as {at_least: 0.9, margin: 0.01}") }
        let margin = (r["margin"] as? Double) ?? (r["margin"] as? Int).map(Double.init) ?? 0
        func num(_ k: String) -> Double? { (r[k] as? Double) ?? (r[k] as? Int).map(Double.init) }
        if let v = num("at_least") { rule = .atLeast(v, margin: margin) }
        else if let v = num("at_most") { rule = .atMost(v, margin: margin) }
        else if let a = r["above_arm"] as? String { rule = .aboveArm(a, margin: margin) }
        else if let a = r["below_arm"] as? String { rule = .belowArm(a, margin: margin) }
        else { throw ConfigError(path, "claims[\(index)].rule: expected one of at_least, at_most, above_arm, below_arm") }
        if let k = r.keys.sorted().first(where: { !["at_least", "at_most", "above_arm", "below_arm", "margin"].contains($0) }) {
            throw ConfigError(path, "claims[\(index)].rule: unknown key '\(k)'")
        }
    }
}
