import Evaluation
import Foundation

/// A finished run: what summary.json, table.md, metrics.csv and curves.svg hold.
public struct RunSummary {
    public let file: ExperimentFile
    public let profile: String, dataset: String, datasetSHA256: String
    public let arms: [ArmResult]
    public let references: [(name: String, metrics: [String: Double])]
    public let provenance: Provenance
    public let seconds: Double
    /// The source folders and experiment file the numbers depend on (stale-row checks).
    public let code: [String]
    /// The resolved `evaluation:` and `references:` sections.
    public let evaluation: [String: Any], referenceSettings: [String: Any]
    /// What the metrics mean (plot labels).
    public var metrics: [Metric] = []
    /// Where each imported row came from (ExperimentFile.imports).
    public var imports: [[String: Any]] = []

    public init(file: ExperimentFile, profile: String, dataset: String, datasetSHA256: String, arms: [ArmResult],
                references: [(name: String, metrics: [String: Double])], provenance: Provenance, seconds: Double, code: [String],
                evaluation: [String: Any], referenceSettings: [String: Any]) {
        (self.file, self.profile, self.dataset, self.datasetSHA256, self.arms, self.references) = (file, profile, dataset, datasetSHA256, arms, references)
        (self.provenance, self.seconds, self.code, self.evaluation, self.referenceSettings) = (provenance, seconds, code, evaluation, referenceSettings)
    }

    public struct CheckResult {
        public let check: Claim.Check
        /// The arm's value, and the value it was compared with (another arm's or a reference's).
        public let measured: Double?, against: Double?
        public let verdict: Verdict
    }

    public struct ClaimResult {
        public let claim: Claim
        public let checks: [CheckResult]
        public let verdict: Verdict
        /// The single check's value (nil for claims with several checks).
        public var measured: Double? { checks.count == 1 ? checks[0].measured : nil }

        /// "arm: metric = v (vs other = o)" per check.
        public var measuredText: String {
            let parts = checks.map { r -> String in
                guard let m = r.measured else { return "\(r.check.metric) = —" }
                var t = "\(r.check.metric) = \(fmt(m))"
                if let o = r.check.rule.other { t += " (\(o)\(r.check.equalSteps ? " at equal steps" : "") = \(r.against.map(fmt) ?? "—"))" }
                return t
            }
            return "\(claim.arm): " + parts.joined(separator: "; ")
        }
    }

    public var claimResults: [ClaimResult] {
        file.claims.map { c in
            let arm = arms.first { $0.name == c.arm }
            let checks = c.checks.map { ch -> CheckResult in
                var others: [String: Double] = [:]
                for r in references { others[r.name] = r.metrics[ch.metric] }
                for a in arms {
                    if ch.equalSteps {
                        let n = arm?.history.count ?? 0
                        others[a.name] = n >= 1 && n <= a.history.count ? a.history[n - 1][ch.metric] : nil
                    } else {
                        others[a.name] = a.metrics[ch.metric]
                    }
                }
                let measured = arm?.metrics[ch.metric]
                return CheckResult(check: ch, measured: measured, against: ch.rule.other.flatMap { others[$0] },
                                   verdict: measured.map { ch.rule.verdict($0, arms: others) } ?? .inconclusive)
            }
            let verdict: Verdict = checks.allSatisfy { $0.verdict == .reproduced } ? .reproduced
                : checks.contains { $0.verdict == .notReproduced } ? .notReproduced : .inconclusive
            return ClaimResult(claim: c, checks: checks, verdict: verdict)
        }
    }

    func ruleText(_ c: Claim) -> String {
        c.checks.map { (c.checks.count > 1 ? "\($0.metric) " : "") + $0.rule.text + ($0.equalSteps ? " at equal steps" : "") }.joined(separator: "; ")
    }

    /// Per arm: epochs run, optimizer steps, training images seen (steps × batch × views).
    var budget: [String: Any] {
        Dictionary(uniqueKeysWithValues: arms.map { ($0.name, ["epochs": $0.history.count, "steps": $0.steps,
                                                               "images_seen": $0.steps * $0.imagesPerStep] as [String: Any]) })
    }

    public func write(to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var armJSON: [String: Any] = [:]
        for a in arms {
            var entry: [String: Any] = ["config": a.config, "metrics": a.metrics, "seconds": a.seconds, "peak_rss_mb": a.peakRSSMegabytes,
                                        "epochs_run": a.history.count]
            if let n = a.note { entry["note"] = n }
            armJSON[a.name] = entry
        }
        let claims: [[String: Any]] = claimResults.map { r in
            ["id": r.claim.id, "paper": r.claim.paperSays, "paper_setting": r.claim.paperSetting, "verified": r.claim.verified,
             "our_setting": r.claim.ourSetting, "arm": r.claim.arm, "measured": r.measured ?? NSNull(), "measured_text": r.measuredText,
             "rule": ruleText(r.claim), "verdict": r.verdict.rawValue,
             "checks": r.checks.map { ["metric": $0.check.metric, "measured": $0.measured ?? NSNull(), "against": $0.against ?? NSNull(),
                                       "rule": $0.check.rule.text, "equal_steps": $0.check.equalSteps, "verdict": $0.verdict.rawValue] as [String: Any] }]
        }
        let summary: [String: Any] = [
            "experiment": file.experiment, "title": file.title, "folder": (folder as NSString).lastPathComponent,
            "family": dataset == file.dataset ? file.family : "\(file.family) [\(datasetStem(dataset))]", "profile": profile,
            "arm_order": arms.map(\.name), "dataset": ["path": dataset, "sha256": datasetSHA256], "arms": armJSON,
            "references": Dictionary(uniqueKeysWithValues: references.map { ($0.name, $0.metrics) }),
            "claims": claims, "provenance": provenance.json, "seconds": seconds, "code": code, "budget": budget,
            "evaluation": evaluation, "reference_settings": referenceSettings, "seed": provenance.seed,
            "leaderboard": file.leaderboard.map { ["arm": $0.arm, "metrics": $0.metrics] as [String: Any] } ?? NSNull(),
            "imports": imports,
        ]
        try writeAtomically(try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys]), to: folder + "/summary.json")
        try writeAtomically(Data(table().utf8), to: folder + "/table.md")
        try writeAtomically(Data(csv().utf8), to: folder + "/metrics.csv")
        try writeAtomically(Data(curvesSVG(arms: arms.map { ($0.name, $0.history) }, references: references, title: "\(file.title) — \(profile)",
                                           metrics: metrics).utf8), to: folder + "/curves.svg")
    }

    /// The claims for a terminal: a line per check (✓ holds, ✗ goes the other way, ~ within
    /// its margin), no line wider than `width`.
    public func claimsSummary(width: Int = 100) -> String {
        compactClaims(title: "claims (1 seed):", claimResults.map { r in
            (r.claim.id, r.verdict, r.checks.map { c in
                (c.verdict, checkText(c.check, measured: c.measured.map(fmt) ?? "—", against: c.against.map(fmt) ?? "—"))
            })
        }, width: width)
    }

    public func claimsTable() -> String {
        var lines = ["| id | paper setting | paper says | our setting | measured | verdict (rule) |", "|---|---|---|---|---|---|"]
        for r in claimResults {
            let says = r.claim.paperSays + (r.claim.verified ? "" : " (unverified)")
            lines.append("| \(r.claim.id) | \(r.claim.paperSetting) | \(says) | \(r.claim.ourSetting) | \(r.measuredText) | **\(r.verdict.rawValue)** (\(ruleText(r.claim))) |")
        }
        return lines.joined(separator: "\n")
    }

    func table() -> String {
        var out = ["# \(file.title) — profile `\(profile)`", "", "## Claims", "", claimsTable(), ""]
        let keys = Array(Set(arms.flatMap { $0.metrics.keys } + references.flatMap { $0.metrics.keys })).sorted()
        out += ["## Arms", "", "| arm | " + keys.joined(separator: " | ") + " | epochs | seconds | note |",
                "|---|" + keys.map { _ in "---" }.joined(separator: "|") + "|---|---|---|"]
        for a in arms {
            out.append("| \(a.name) | " + keys.map { a.metrics[$0].map(fmt) ?? "" }.joined(separator: " | ")
                       + " | \(a.history.count) | \(Int(a.seconds.rounded())) | \(a.note ?? "") |")
        }
        if !references.isEmpty {
            out += ["", "Reference rows:", "", "| reference | " + keys.joined(separator: " | ") + " |", "|---|" + keys.map { _ in "---" }.joined(separator: "|") + "|"]
            for r in references { out.append("| \(r.name) | " + keys.map { r.metrics[$0].map(fmt) ?? "" }.joined(separator: " | ") + " |") }
        }
        let p = provenance
        out += ["", "## Provenance", "",
                "- commit `\(p.gitCommit)`\(p.dirty ? " (uncommitted changes present)" : ""), \(p.date)",
                "- machine: \(p.cpu), \(p.threads) threads, seed \(p.seed); \(p.blas); \(p.libraries)",
                "- dataset: `\(dataset)` sha256 `\(datasetSHA256)`",
                "- wall time \(Int(seconds.rounded())) s, peak RSS \(Int((arms.map(\.peakRSSMegabytes).max() ?? 0).rounded())) MB",
                "- budget: " + arms.map { "\($0.name) \($0.history.count) epochs, \($0.steps) steps" }.joined(separator: "; ")]
        out += imports.map { "- imported row *\($0["row"] ?? "")*: arm `\($0["arm"] ?? "")` of `\($0["folder"] ?? "")`, commit `\(($0["git_commit"] as? String ?? "").prefix(8))`, "
                             + "\($0["steps"] ?? "") steps, \($0["images_seen"] ?? "") images seen (not retrained here)" } + [""]
        return out.joined(separator: "\n")
    }

    func csv() -> String {
        let keys = Array(Set(arms.flatMap { $0.history.flatMap { $0.keys } })).filter { $0 != "epoch" }.sorted()
        var lines = ["arm,epoch," + keys.joined(separator: ",")]
        for a in arms { for row in a.history {
            lines.append("\(a.name),\(Int(row["epoch"] ?? 0)),\(keys.map { row[$0].map { String($0) } ?? "" }.joined(separator: ","))")
        } }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// "knn_top1 0.8017 vs random init 0.7864: above by > 0.01".
func checkText(_ c: Claim.Check, measured: String, against: String) -> String {
    let other = c.rule.other.map { " vs \($0)\(c.equalSteps ? " (equal steps)" : "") \(against)" } ?? ""
    return "\(c.metric) \(measured)\(other): " + c.rule.shortText
}

/// Claim id, verdict, then one line per check; lines cut at `width`.
func compactClaims(title: String, _ claims: [(id: String, verdict: Verdict, checks: [(Verdict, String)])], width: Int) -> String {
    let idWidth = max(6, claims.map(\.id.count).max() ?? 0) + 2, verdictWidth = 16
    func mark(_ v: Verdict) -> String { v == .reproduced ? "✓" : v == .notReproduced ? "✗" : "~" }
    func cut(_ s: String) -> String { s.count <= width ? s : String(s.prefix(width - 1)) + "…" }
    var lines = [title]
    for c in claims {
        for (i, (v, text)) in c.checks.enumerated() {
            let head = i == 0 ? c.id.padding(toLength: idWidth, withPad: " ", startingAt: 0) + c.verdict.rawValue.padding(toLength: verdictWidth, withPad: " ", startingAt: 0)
                              : String(repeating: " ", count: idWidth + verdictWidth)
            lines.append(cut(head + mark(v) + " " + text))
        }
    }
    return lines.joined(separator: "\n")
}
