import Evaluation
import Datasets
import Foundation

/// Mean, sample standard deviation (n − 1; 0 for one value), min, max and n of a metric over seeds.
public struct SeedStats: Equatable {
    public let mean: Double, sd: Double, min: Double, max: Double, n: Int

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let n = values.count, mean = values.reduce(0, +) / Double(n)
        (self.n, self.mean) = (n, mean)
        sd = n < 2 ? 0 : (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)).squareRoot()
        (min, max) = (values.min()!, values.max()!)
    }

    var json: [String: Any] { ["mean": mean, "sd": sd, "min": min, "max": max, "n": n] }
    /// "0.8030 ± 0.0042" ("0.8030" for one value).
    var text: String { n < 2 ? fmt(mean) : "\(fmt(mean)) ± \(fmt(sd))" }
}

/// A check decided over seeds on the mean gap: reproduced when the mean gap has the claimed
/// sign and exceeds max(margin, 2 × the pooled standard deviation of the two sides), not
/// reproduced when the opposite sign exceeds it, inconclusive otherwise. Against a constant
/// the pooled deviation is the measured side's own. One seed gives the single-seed rule.
public struct MeanGapDecision: Equatable {
    /// measured − (other + offset) (means over seeds), the threshold it had to pass, the verdict.
    public let gap: Double, threshold: Double, verdict: Verdict

    public init(_ rule: ClaimRule, measured: [Double], against: [Double]) {
        guard let m = SeedStats(measured) else { (gap, threshold, verdict) = (.nan, .nan, .inconclusive); return }
        func decide(_ gap: Double, _ sign: Double, _ margin: Double, sd: Double, inclusive: Bool) -> (Double, Double, Verdict) {
            let t = Swift.max(margin, 2 * sd), g = gap * sign
            guard g.isFinite else { return (gap, t, .inconclusive) }
            let holds = inclusive ? g >= t : g > t, opposite = inclusive ? g <= -t : g < -t
            return (gap, t, holds ? .reproduced : opposite ? .notReproduced : .inconclusive)
        }
        switch rule {
        case let .atLeast(v, margin): (gap, threshold, verdict) = decide(m.mean - v, 1, margin, sd: m.sd, inclusive: true)
        case let .atMost(v, margin): (gap, threshold, verdict) = decide(m.mean - v, -1, margin, sd: m.sd, inclusive: true)
        case let .aboveArm(_, margin, offset), let .belowArm(_, margin, offset):
            guard let a = SeedStats(against) else { (gap, threshold, verdict) = (.nan, .nan, .inconclusive); return }
            let pooled = ((m.sd * m.sd + a.sd * a.sd) / 2).squareRoot()
            let sign: Double = if case .aboveArm = rule { 1 } else { -1 }
            (gap, threshold, verdict) = decide(m.mean - (a.mean + offset), sign, margin, sd: pooled, inclusive: false)
        }
    }
}

/// A signature check decided in every seed: reproduced when it holds in each, not
/// reproduced when any seed goes the other way, inconclusive otherwise.
public func perSeedVerdict(_ verdicts: [Verdict]) -> Verdict {
    verdicts.isEmpty ? .inconclusive : verdicts.allSatisfy { $0 == .reproduced } ? .reproduced
        : verdicts.contains(.notReproduced) ? .notReproduced : .inconclusive
}

public let seedRuleText = "over seeds, a comparison is reproduced when the mean gap has the claimed sign and exceeds max(margin, 2 × pooled seed sd of the two sides), not reproduced when the opposite sign does, else inconclusive; checks marked per seed must hold in every seed; sd is the sample standard deviation (n − 1)"

/// Runs `file` at each seed (a seed whose results folder is up to date — same configs,
/// dataset, settings and unchanged code — is reused) and writes the aggregate to
/// results/<experiment>/<profile>-seeds<N>/. Returns nil when a seed was interrupted.
@discardableResult
public func runSeeds<E: Experiment>(_ type: E.Type, file: ExperimentFile, options: RunOptions, seeds: [UInt64]) throws -> SeedAggregate? {
    guard !seeds.isEmpty, Set(seeds).count == seeds.count else { throw ConfigError("--seeds", "expected distinct seeds, got \(seeds)") }
    let plan = try RunPlan<E>(file, options)
    let code = codePaths(of: E.self) + ["experiments/\(file.experiment).yaml"]
    let datasetSHA256 = try sha256(file: options.dataset ?? file.dataset)
    var folders: [String] = []
    for (i, seed) in seeds.enumerated() {
        var o = options
        (o.seed, o.firstSeed) = (seed, i == 0)
        let folder = resultsFolder(file, o)
        if !options.resume, let commit = upToDate(folder, plan: plan, code: code, datasetSHA256: datasetSHA256) {
            options.log("seed \(seed): \(folder) is up to date (commit \(commit.prefix(8))): reused")
        } else {
            options.log("seed \(seed) (\(i + 1) of \(seeds.count)) → \(folder)")
            guard try runExperiment(E.self, file: file, options: o) != nil else { return nil }
        }
        folders.append(folder)
    }
    let out = seedAggregateFolder(file, options, seeds: seeds)
    let aggregate = try SeedAggregate(file: file, folders: folders)
    try aggregate.write(to: out)
    options.log(aggregate.claimsSummary(width: 100) + "\nfull table: \(out)/table.md")
    return aggregate
}

/// Where the aggregate of `seeds` goes: results/<experiment>/<profile>-seeds<N> for the
/// file's seed and the next N − 1, else …-seeds<s1>_<s2>_….
public func seedAggregateFolder(_ file: ExperimentFile, _ options: RunOptions, seeds: [UInt64]) -> String {
    let defaultSeeds = seeds == (0..<UInt64(seeds.count)).map { file.seed + $0 }
    return resultsFolder(file, options, seed: file.seed) + (defaultSeeds ? "-seeds\(seeds.count)" : "-seeds" + seeds.map(String.init).joined(separator: "_"))
}

/// The file's `leaderboard` profile on its leaderboard arm, into results/<name>/leaderboard/,
/// unless that folder is up to date.
public func runLeaderboard<E: Experiment>(_ type: E.Type, file: ExperimentFile, options: RunOptions) throws {
    guard let board = file.leaderboard else { throw ConfigError(file.path, "no leaderboard block") }
    var o = options
    (o.profile, o.arms) = ("leaderboard", [board.arm])
    let plan = try RunPlan<E>(file, o), folder = resultsFolder(file, o)
    if let commit = upToDate(folder, plan: plan, code: codePaths(of: E.self) + ["experiments/\(file.experiment).yaml"],
                                datasetSHA256: try sha256(file: o.dataset ?? file.dataset)) {
        options.log("\(file.experiment): \(folder) is up to date (commit \(commit.prefix(8)))")
    } else {
        options.log("\(file.experiment): leaderboard profile, arm \(board.arm) → \(folder)")
        try runExperiment(E.self, file: file, options: o)
    }
}

/// The commit of a results folder whose run matches `plan` (configs, dataset, settings) and
/// whose code is unchanged since, or nil.
func upToDate<E>(_ folder: String, plan: RunPlan<E>, code: [String], datasetSHA256: String) -> String? {
    guard let data = FileManager.default.contents(atPath: folder + "/summary.json"),
          let s = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
          let p = s["provenance"] as? [String: Any], p["dirty"] as? Bool == false, let commit = p["git_commit"] as? String,
          s["arm_order"] as? [String] == plan.arms.map(\.name),
          let arms = s["arms"] as? [String: Any],
          (s["dataset"] as? [String: Any])?["sha256"] as? String == datasetSHA256 else { return nil }
    func same(_ a: Any?, _ b: Any) -> Bool { a.flatMap { try? canonicalJSON($0) } == (try? canonicalJSON(b)) }
    guard same(s["evaluation"], plan.evaluationJSON), same(s["reference_settings"], plan.referencesJSON),
          plan.arms.allSatisfy({ same((arms[$0.name] as? [String: Any])?["config"], $0.resolved) }) else { return nil }
    guard git(["cat-file", "-e", commit + "^{commit}"]) != nil, git(["diff", "--name-only", commit, "HEAD", "--"] + code) == "",
          git(["status", "--porcelain", "--untracked-files=no", "--"] + code) == "" else { return nil }
    return commit
}

/// Per-seed summaries folded into one: metric statistics per arm and reference row, and
/// verdicts over seeds.
public struct SeedAggregate {
    public let file: ExperimentFile
    public let folders: [String]
    let runs: [[String: Any]]

    public struct CheckOverSeeds {
        public let check: Claim.Check
        public let measured: [Double], against: [Double], perSeed: [Verdict]
        /// nil for checks decided per seed.
        public let decision: MeanGapDecision?
        public let verdict: Verdict
    }

    public struct ClaimOverSeeds {
        public let claim: Claim
        public let checks: [CheckOverSeeds]
        public let perSeed: [Verdict]
        public let verdict: Verdict
    }

    public init(file: ExperimentFile, folders: [String]) throws {
        self.file = file
        self.folders = folders
        runs = try folders.map { f in
            guard let data = FileManager.default.contents(atPath: f + "/summary.json"),
                  let s = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw RunError("\(f)/summary.json: missing or not a JSON object") }
            return s
        }
    }

    var seeds: [Int] { runs.map { ($0["provenance"] as? [String: Any])?["seed"] as? Int ?? -1 } }

    /// Statistics of every metric of `arm` (an arm, or a reference row with `reference`).
    public func stats(_ name: String, reference: Bool = false) -> [String: SeedStats] {
        var values: [String: [Double]] = [:]
        for r in runs {
            let m = reference ? (r["references"] as? [String: Any])?[name] as? [String: Any]
                              : ((r["arms"] as? [String: Any])?[name] as? [String: Any])?["metrics"] as? [String: Any]
            for (k, v) in m ?? [:] { if let d = v as? Double { values[k, default: []].append(d) } }
        }
        return values.compactMapValues { SeedStats($0) }
    }

    public var claims: [ClaimOverSeeds] {
        file.claims.map { c in
            let perRun = runs.map { r in (r["claims"] as? [[String: Any]] ?? []).first { $0["id"] as? String == c.id } }
            let checks = c.checks.enumerated().map { j, ch -> CheckOverSeeds in
                let rows = perRun.map { ($0?["checks"] as? [[String: Any]]).flatMap { j < $0.count ? $0[j] : nil } }
                let measured = rows.compactMap { $0?["measured"] as? Double }, against = rows.compactMap { $0?["against"] as? Double }
                let perSeed = rows.map { ($0?["verdict"] as? String).flatMap(Verdict.init(rawValue:)) ?? .inconclusive }
                if ch.perSeed { return CheckOverSeeds(check: ch, measured: measured, against: against, perSeed: perSeed, decision: nil, verdict: perSeedVerdict(perSeed)) }
                let d = MeanGapDecision(ch.rule, measured: measured, against: against)
                return CheckOverSeeds(check: ch, measured: measured, against: against, perSeed: perSeed, decision: d, verdict: d.verdict)
            }
            let perSeed = perRun.map { ($0?["verdict"] as? String).flatMap(Verdict.init(rawValue:)) ?? .inconclusive }
            let verdict: Verdict = checks.allSatisfy { $0.verdict == .reproduced } ? .reproduced
                : checks.contains { $0.verdict == .notReproduced } ? .notReproduced : .inconclusive
            return ClaimOverSeeds(claim: c, checks: checks, perSeed: perSeed, verdict: verdict)
        }
    }

    func checkText(_ c: CheckOverSeeds) -> String {
        let m = SeedStats(c.measured)?.text ?? "—", a = SeedStats(c.against)?.text ?? "—"
        var t = Harness.checkText(c.check, measured: m, against: a)
        if let d = c.decision { t += " — gap \(String(format: "%+.4g", d.gap)) vs \(fmt(d.threshold))" }
        else { t += " — per seed: " + c.perSeed.map(short).joined(separator: " ") }
        return t
    }

    public func claimsSummary(width: Int = 100) -> String {
        compactClaims(title: "claims (\(runs.count) seeds: \(seeds.map(String.init).joined(separator: ", ")); mean gap vs max(margin, 2 × pooled sd)):",
                      claims.map { r in (r.claim.id, r.verdict, r.checks.map { ($0.verdict, checkText($0)) }) }, width: width)
    }

    var armOrder: [String] { runs.first?["arm_order"] as? [String] ?? [] }
    var referenceNames: [String] { Array(Set(runs.flatMap { ($0["references"] as? [String: Any] ?? [:]).keys })).sorted() }

    public func write(to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let first = runs[0]
        let commits = runs.map { ($0["provenance"] as? [String: Any])?["git_commit"] as? String ?? "unknown" }
        let now = Provenance.current(threads: (first["provenance"] as? [String: Any])?["threads"] as? Int ?? 0, seed: 0)
        let claimJSON: [[String: Any]] = claims.map { r in
            ["id": r.claim.id, "paper": r.claim.paperSays, "paper_setting": r.claim.paperSetting, "verified": r.claim.verified,
             "our_setting": r.claim.ourSetting, "arm": r.claim.arm, "verdict": r.verdict.rawValue, "per_seed_verdicts": r.perSeed.map(\.rawValue),
             "measured_text": "\(r.claim.arm): " + r.checks.map(checkText).joined(separator: "; "),
             "rule": r.checks.map { ($0.check.perSeed ? "per seed: " : "mean gap: ") + $0.check.metric + " " + $0.check.rule.text }.joined(separator: "; "),
             "checks": r.checks.map { c in
                 ["metric": c.check.metric, "rule": c.check.rule.text, "decided": c.check.perSeed ? "per seed" : "mean gap",
                  "measured": c.measured, "against": c.against, "per_seed_verdicts": c.perSeed.map(\.rawValue), "verdict": c.verdict.rawValue,
                  "gap": c.decision?.gap ?? NSNull(), "threshold": c.decision?.threshold ?? NSNull()] as [String: Any]
             }]
        }
        let summary: [String: Any] = [
            "experiment": file.experiment, "title": file.title, "folder": (folder as NSString).lastPathComponent, "aggregate": true,
            "family": first["family"] ?? file.family, "profile": first["profile"] ?? "", "seeds": seeds, "n": runs.count,
            "per_seed": zip(zip(seeds, folders), commits).map { ["seed": $0.0, "folder": ($0.1 as NSString).lastPathComponent, "commit": $1] },
            "arm_order": armOrder, "dataset": first["dataset"] ?? [:], "budget": first["budget"] ?? [:], "code": first["code"] ?? [],
            "arms": Dictionary(uniqueKeysWithValues: armOrder.map { ($0, ["metrics": stats($0).mapValues(\.json)]) }),
            "references": Dictionary(uniqueKeysWithValues: referenceNames.map { ($0, stats($0, reference: true).mapValues(\.json)) }),
            "claims": claimJSON, "rule": seedRuleText, "commits": commits,
            "provenance": ["git_commit": now.gitCommit, "dirty": now.dirty, "date": now.date, "machine": now.machine, "cpu": now.cpu, "blas": now.blas, "aggregated": true],
        ]
        try writeAtomically(try JSONSerialization.data(withJSONObject: summary, options: [.prettyPrinted, .sortedKeys]), to: folder + "/summary.json")
        try writeAtomically(Data(table(commits: commits).utf8), to: folder + "/table.md")
    }

    public func claimsTable() -> String {
        var lines = ["| id | paper setting | paper says | our setting | measured (mean ± sd over seeds) | per seed | verdict over seeds |", "|---|---|---|---|---|---|---|"]
        for r in claims {
            let says = r.claim.paperSays + (r.claim.verified ? "" : " (unverified)")
            lines.append("| \(r.claim.id) | \(r.claim.paperSetting) | \(says) | \(r.claim.ourSetting) | \(r.claim.arm): "
                         + r.checks.map { ($0.check.perSeed ? "[per seed] " : "") + checkText($0) }.joined(separator: "; ")
                         + " | \(r.perSeed.map(short).joined(separator: " ")) | **\(r.verdict.rawValue)** |")
        }
        return lines.joined(separator: "\n")
    }

    func table(commits: [String]) -> String {
        let profile = runs[0]["profile"] as? String ?? ""
        var out = ["# \(file.title) — profile `\(profile)`, \(runs.count) seeds (\(seeds.map(String.init).joined(separator: ", ")))", "",
                   "Verdict rule: \(seedRuleText). Per-seed verdicts: r reproduced, n not reproduced, i inconclusive.", "",
                   "## Claims", "", claimsTable(), ""]
        let armStats = armOrder.map { ($0, stats($0)) }, refStats = referenceNames.map { ($0, stats($0, reference: true)) }
        let keys = Array(Set(armStats.flatMap { $0.1.keys } + refStats.flatMap { $0.1.keys })).sorted()
        func row(_ name: String, _ s: [String: SeedStats]) -> String {
            "| \(name) | " + keys.map { k in s[k].map { "\($0.text)" + ($0.n == runs.count ? "" : " (n = \($0.n))") } ?? "" }.joined(separator: " | ") + " |"
        }
        out += ["## Arms (mean ± sd over seeds)", "", "| arm | " + keys.joined(separator: " | ") + " |", "|---|" + keys.map { _ in "---" }.joined(separator: "|") + "|"]
        out += armStats.map { row($0.0, $0.1) }
        out += ["", "Reference rows:", "", "| reference | " + keys.joined(separator: " | ") + " |", "|---|" + keys.map { _ in "---" }.joined(separator: "|") + "|"]
        out += refStats.map { row($0.0, $0.1) }
        out += ["", "## Seeds", "", "| seed | folder | commit | verdicts |", "|---|---|---|---|"]
        for (i, f) in folders.enumerated() {
            let v = claims.map { "\($0.claim.id) \(short($0.perSeed[i]))" }.joined(separator: ", ")
            out.append("| \(seeds[i]) | `\((f as NSString).lastPathComponent)` | `\(commits[i].prefix(10))` | \(v) |")
        }
        out.append("")
        return out.joined(separator: "\n")
    }
}

func short(_ v: Verdict) -> String { v == .reproduced ? "r" : v == .notReproduced ? "n" : "i" }
