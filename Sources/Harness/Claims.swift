import Foundation

public enum Verdict: String, Codable, Sendable { case reproduced, notReproduced = "not reproduced", inconclusive }

/// How a claim's measured number becomes a verdict. Every rule has a margin: within it
/// the verdict is "inconclusive".
public enum ClaimRule: Equatable, Sendable {
    /// measured ≥ value (reproduced above value + margin, not reproduced below value − margin)
    case atLeast(Double, margin: Double)
    case atMost(Double, margin: Double)
    /// measured exceeds another arm's value of the same metric, plus `offset`, by more than
    /// the margin (offset −0.003: "parity or better", within 0.3 points)
    case aboveArm(String, margin: Double, offset: Double = 0)
    case belowArm(String, margin: Double, offset: Double = 0)

    public var text: String {
        switch self {
        case let .atLeast(v, m): return "≥ \(fmt(v)) (margin ±\(fmt(m)))"
        case let .atMost(v, m): return "≤ \(fmt(v)) (margin ±\(fmt(m)))"
        case let .aboveArm(a, m, o): return "above '\(a)'\(offsetText(o)) by more than \(fmt(m))"
        case let .belowArm(a, m, o): return "below '\(a)'\(offsetText(o)) by more than \(fmt(m))"
        }
    }

    /// The rule without the other row's name: "above by > 0.01", "≥ 0.4 (±0.05)".
    public var shortText: String {
        switch self {
        case let .atLeast(v, m): return "≥ \(fmt(v))" + (m > 0 ? " (±\(fmt(m)))" : "")
        case let .atMost(v, m): return "≤ \(fmt(v))" + (m > 0 ? " (±\(fmt(m)))" : "")
        case let .aboveArm(_, m, o): return "above\(offsetText(o)) by > \(fmt(m))"
        case let .belowArm(_, m, o): return "below\(offsetText(o)) by > \(fmt(m))"
        }
    }

    /// The arm or reference row the rule compares with, if any.
    public var other: String? {
        switch self {
        case .atLeast, .atMost: return nil
        case let .aboveArm(a, _, _), let .belowArm(a, _, _): return a
        }
    }

    /// The verdict for `measured`, given the other arms' (and reference rows') values of the
    /// same metric.
    public func verdict(_ measured: Double, arms: [String: Double]) -> Verdict {
        guard measured.isFinite else { return .inconclusive }
        switch self {
        case let .atLeast(v, m): return measured >= v + m ? .reproduced : (measured < v - m ? .notReproduced : .inconclusive)
        case let .atMost(v, m): return measured <= v - m ? .reproduced : (measured > v + m ? .notReproduced : .inconclusive)
        case let .aboveArm(a, m, offset):
            guard let o = arms[a].map({ $0 + offset }) else { return .inconclusive }
            return measured > o + m ? .reproduced : (measured < o - m ? .notReproduced : .inconclusive)
        case let .belowArm(a, m, offset):
            guard let o = arms[a].map({ $0 + offset }) else { return .inconclusive }
            return measured < o - m ? .reproduced : (measured > o + m ? .notReproduced : .inconclusive)
        }
    }
}

func fmt(_ v: Double) -> String { String(format: "%.4g", v) }

/// " − 0.003" after the other row's name ("" without an offset).
func offsetText(_ o: Double) -> String { o == 0 ? "" : (o < 0 ? " − " : " + ") + fmt(Swift.abs(o)) }

/// One claim of a paper, checked on one arm by one rule, or by several (`checks`) that
/// must all hold: reproduced when every check is, not reproduced when any check goes the
/// other way beyond its margin, inconclusive otherwise.
public struct Claim {
    public let id: String
    public let paperSetting: String
    public let paperSays: String
    /// Whether the paper's number was checked against the paper's text (docs/papers/ says).
    public let verified: Bool
    public let ourSetting: String
    public let arm: String
    public let checks: [Check]

    /// A rule on one metric of the claim's arm. Arm rules name another arm or a reference
    /// row; with `equalSteps` the other arm's value is read from its history at the epoch
    /// where the claim's arm ended (a collapse signature relative to the baseline at equal
    /// steps).
    public struct Check {
        public let metric: String
        public let rule: ClaimRule
        public let equalSteps: Bool
        /// Over seeds: decided in every seed and required to hold in each (a signature such
        /// as "loss below the baseline"), instead of on the mean gap.
        public let perSeed: Bool

        static let ruleKeys = ["at_least", "at_most", "above_arm", "below_arm", "margin", "offset"]

        init(_ r: [String: Any], metric: String, allowed: [String], path: String, key: String) throws {
            if let k = r.keys.sorted().first(where: { !allowed.contains($0) }) { throw ConfigError(path, "\(key): unknown key '\(k)'") }
            func num(_ k: String) -> Double? { (r[k] as? Double) ?? (r[k] as? Int).map(Double.init) }
            let margin = num("margin") ?? 0
            if let v = num("at_least") { rule = .atLeast(v, margin: margin) }
            else if let v = num("at_most") { rule = .atMost(v, margin: margin) }
            else if let a = r["above_arm"] as? String { rule = .aboveArm(a, margin: margin, offset: num("offset") ?? 0) }
            else if let a = r["below_arm"] as? String { rule = .belowArm(a, margin: margin, offset: num("offset") ?? 0) }
            else { throw ConfigError(path, "\(key): expected one of at_least, at_most, above_arm, below_arm") }
            self.metric = metric
            equalSteps = r["equal_steps"] as? Bool ?? false
            perSeed = r["per_seed"] as? Bool ?? false
        }
    }

    static let keys = ["id", "paper_setting", "paper_says", "verified", "our_setting", "arm", "metric", "rule", "checks"]

    init(_ raw: Any, path: String, index: Int) throws {
        guard let d = raw as? [String: Any] else { throw ConfigError(path, "claims[\(index)]: expected a mapping") }
        if let k = d.keys.sorted().first(where: { !Self.keys.contains($0) }) { throw ConfigError(path, "claims[\(index)]: unknown key '\(k)'") }
        func s(_ k: String) throws -> String {
            guard let v = d[k] as? String else { throw ConfigError(path, "claims[\(index)].\(k): expected a string") }
            return v
        }
        id = try s("id"); paperSetting = try s("paper_setting"); paperSays = try s("paper_says")
        ourSetting = try s("our_setting"); arm = try s("arm")
        guard let v = d["verified"] as? Bool else { throw ConfigError(path, "claims[\(index)].verified: expected true or false") }
        verified = v
        if let list = d["checks"] {
            guard d["rule"] == nil, d["metric"] == nil else { throw ConfigError(path, "claims[\(index)]: give either metric and rule, or checks") }
            guard let items = list as? [Any], !items.isEmpty else { throw ConfigError(path, "claims[\(index)].checks: expected a list of rules") }
            checks = try items.enumerated().map { j, item in
                let key = "claims[\(index)].checks[\(j)]"
                guard let r = item as? [String: Any], let metric = r["metric"] as? String else {
                    throw ConfigError(path, "\(key): expected a mapping such as {metric: loss, below_arm: baseline, margin: 0.05}")
                }
                return try Check(r, metric: metric, allowed: Check.ruleKeys + ["metric", "equal_steps", "per_seed"], path: path, key: key)
            }
        } else {
            let metric = try s("metric")
            guard let r = d["rule"] as? [String: Any], r.count >= 1 else { throw ConfigError(path, "claims[\(index)].rule: expected a mapping such as {at_least: 0.9, margin: 0.01}") }
            checks = [try Check(r, metric: metric, allowed: Check.ruleKeys, path: path, key: "claims[\(index)].rule")]
        }
    }
}
