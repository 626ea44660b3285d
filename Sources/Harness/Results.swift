import Foundation

/// A finished run: what summary.json, table.md, metrics.csv and curves.svg hold.
public struct RunSummary {
    public let file: ExperimentFile
    public let profile: String, dataset: String, datasetSHA256: String
    public let arms: [ArmResult]
    public let references: [(name: String, metrics: [String: Double])]
    public let provenance: Provenance
    public let seconds: Double

    public struct ClaimResult { public let claim: Claim; public let measured: Double?; public let verdict: Verdict }

    public var claimResults: [ClaimResult] {
        file.claims.map { c in
            let measured = arms.first { $0.name == c.arm }?.metrics[c.metric]
            let others = Dictionary(uniqueKeysWithValues: arms.compactMap { a in a.metrics[c.metric].map { (a.name, $0) } })
            return ClaimResult(claim: c, measured: measured, verdict: measured.map { c.rule.verdict($0, arms: others) } ?? .inconclusive)
        }
    }

    var budget: [String: Any] {
        Dictionary(uniqueKeysWithValues: arms.map { ($0.name, ["epochs": $0.history.count, "steps": $0.steps] as [String: Any]) })
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
             "our_setting": r.claim.ourSetting, "arm": r.claim.arm, "metric": r.claim.metric, "measured": r.measured ?? NSNull(),
             "rule": r.claim.rule.text, "verdict": r.verdict.rawValue]
        }
        let summary: [String: Any] = [
            "experiment": file.experiment, "title": file.title, "family": file.family, "profile": profile,
            "arm_order": arms.map(\.name), "dataset": ["path": dataset, "sha256": datasetSHA256], "arms": armJSON,
            "references": Dictionary(uniqueKeysWithValues: references.map { ($0.name, $0.metrics) }),
            "claims": claims, "provenance": provenance.json, "seconds": seconds, "code": file.code, "budget": budget,
        ]
        try writeAtomically(try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys]), to: folder + "/summary.json")
        try writeAtomically(Data(table().utf8), to: folder + "/table.md")
        try writeAtomically(Data(csv().utf8), to: folder + "/metrics.csv")
        try writeAtomically(Data(curvesSVG(arms: arms.map { ($0.name, $0.history) }, title: "\(file.title) — \(profile)").utf8), to: folder + "/curves.svg")
    }

    public func claimsTable() -> String {
        var lines = ["| id | paper setting | paper says | our setting | measured | verdict (rule) |", "|---|---|---|---|---|---|"]
        for r in claimResults {
            let says = r.claim.paperSays + (r.claim.verified ? "" : " (unverified)")
            let m = r.measured.map { "\(r.claim.arm): \(r.claim.metric) = \(fmt($0))" } ?? "—"
            lines.append("| \(r.claim.id) | \(r.claim.paperSetting) | \(says) | \(r.claim.ourSetting) | \(m) | **\(r.verdict.rawValue)** (\(r.claim.rule.text)) |")
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
                "- machine: \(p.machine), \(p.threads) threads, seed \(p.seed)",
                "- dataset: `\(dataset)` sha256 `\(datasetSHA256)`",
                "- wall time \(Int(seconds.rounded())) s, peak RSS \(Int((arms.map(\.peakRSSMegabytes).max() ?? 0).rounded())) MB",
                "- budget: " + arms.map { "\($0.name) \($0.history.count) epochs, \($0.steps) steps" }.joined(separator: "; "), ""]
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
