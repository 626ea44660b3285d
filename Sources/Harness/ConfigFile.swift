import Evaluation
import Foundation
import Yams

/// A problem in an experiment file or an override, naming the file and key.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String, message: String
    public init(_ file: String, _ message: String) { (self.file, self.message) = (file, message) }
    public var description: String { "\(file): \(message)" }
}

/// An ordered YAML mapping (arms keep the file's order).
public typealias Ordered = [(key: String, value: Any)]

/// experiments/<name>.yaml: what to run, the paper's defaults, ablation arms, profiles and
/// the claims that decide verdicts.
public struct ExperimentFile {
    public let path: String
    public let experiment: String
    public let title: String
    /// Leaderboard group: methods in one family share data, backbone and budget.
    public let family: String
    public let dataset: String
    public let seed: UInt64
    /// The method's configuration with the paper's values (decoded per experiment).
    public let config: [String: Any]
    public let arms: Ordered
    public let profiles: [String: [String: Any]]
    public let claims: [Claim]
    /// File-level sections that profiles and `--set evaluation.…` / `--set references.…` may
    /// override, kept apart from the method's config: the shared evaluation protocol and the
    /// reference rows.
    public let sections: [String: [String: Any]]
    /// The arm and metrics the equal-budget leaderboard reports (`make leaderboard` runs the
    /// `leaderboard` profile on that arm), or nil.
    public let leaderboard: Leaderboard?

    public struct Leaderboard: Equatable { public let arm: String, metrics: [String] }
    /// Rows read from another experiment's results at the same profile, dataset and seed:
    /// one of its arms, compared here like a reference row and never retrained here.
    public let imports: [Import]

    public struct Import: Equatable { public let row: String, experiment: String, arm: String }

    static let sectionKeys = ["evaluation", "references"]
    static let topLevelKeys = ["experiment", "title", "family", "dataset", "seed", "config", "arms", "profiles", "claims", "leaderboard", "imports"] + sectionKeys

    public init(path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigError(path, "cannot read the experiment file") }
        try self.init(yaml: text, path: path)
    }

    public init(yaml text: String, path: String) throws {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw ConfigError(path, yamlErrorLine(error)) }
        guard let root = node.flatMap(orderedMapping) else { throw ConfigError(path, "expected a mapping at the top level") }
        let keys = root.map(\.key)
        if let unknown = keys.first(where: { !Self.topLevelKeys.contains($0) }) {
            throw ConfigError(path, "unknown key '\(unknown)' (known: \(Self.topLevelKeys.joined(separator: ", ")))")
        }
        let dict = Dictionary(root, uniquingKeysWith: { a, _ in a })
        func string(_ k: String) throws -> String {
            guard let s = dict[k] as? String else { throw ConfigError(path, "key '\(k)': expected a string") }
            return s
        }
        self.path = path
        experiment = try string("experiment")
        title = (dict["title"] as? String) ?? experiment
        family = try string("family")
        dataset = try string("dataset")
        guard let seed = dict["seed"] as? Int, seed >= 0 else { throw ConfigError(path, "key 'seed': expected a non-negative integer") }
        self.seed = UInt64(seed)
        config = try Self.mapping(dict["config"] ?? Ordered(), "config", path)
        guard let arms = dict["arms"] as? Ordered, !arms.isEmpty else { throw ConfigError(path, "key 'arms': expected a mapping of at least one arm") }
        for arm in arms { _ = try Self.mapping(arm.value, "arms.\(arm.key)", path) }
        self.arms = arms
        var profiles: [String: [String: Any]] = [:]
        for p in (dict["profiles"] as? Ordered) ?? [] { profiles[p.key] = try Self.mapping(p.value, "profiles.\(p.key)", path) }
        for required in ["smoke", "default"] where profiles[required] == nil {
            throw ConfigError(path, "profiles: the '\(required)' profile is missing")
        }
        self.profiles = profiles
        let claimsRaw = dict["claims"] ?? [Any]()
        guard let claimList = claimsRaw as? [Any], asOrdered(claimsRaw) == nil else { throw ConfigError(path, "key 'claims': expected a list") }
        claims = try claimList.enumerated().map { try Claim(plain($1), path: path, index: $0) }
        var sections: [String: [String: Any]] = [:]
        for k in Self.sectionKeys { sections[k] = try Self.mapping(dict[k] ?? NSNull(), k, path) }
        self.sections = sections
        if let raw = dict["leaderboard"] {
            let m = try Self.mapping(raw, "leaderboard", path)
            guard m.count == 2, let arm = m["arm"] as? String, let metrics = m["metrics"] as? [Any], !metrics.isEmpty,
                  let names = metrics as? [String] else {
                throw ConfigError(path, "leaderboard: expected {arm: <arm>, metrics: [<metric>, …]}")
            }
            guard arms.contains(where: { $0.key == arm }) else { throw ConfigError(path, "leaderboard.arm: no arm '\(arm)'") }
            guard profiles["leaderboard"] != nil else { throw ConfigError(path, "profiles: a leaderboard block needs a 'leaderboard' profile") }
            leaderboard = Leaderboard(arm: arm, metrics: names)
        } else {
            leaderboard = nil
        }
        let importsRaw = dict["imports"] ?? [Any]()
        guard let importList = importsRaw as? [Any], asOrdered(importsRaw) == nil else { throw ConfigError(path, "key 'imports': expected a list") }
        imports = try importList.enumerated().map { i, raw in
            let m = try Self.mapping(raw, "imports[\(i)]", path)
            guard m.count == 3, let row = m["row"] as? String, let experiment = m["experiment"] as? String, let arm = m["arm"] as? String else {
                throw ConfigError(path, "imports[\(i)]: expected {row: <name here>, experiment: <experiment>, arm: <its arm>}")
            }
            return Import(row: row, experiment: experiment, arm: arm)
        }
    }

    /// Checks every metric and comparison the file names against what the method reports:
    /// an unknown metric or row is an error naming the key, before anything runs.
    public func validate(metrics: [Metric], references: [String]) throws {
        let known = Set(metrics.map(\.key)), rows = Set(arms.map(\.key) + references + imports.map(\.row))
        let list = metrics.map(\.key).sorted().joined(separator: ", ")
        for (i, c) in claims.enumerated() {
            guard arms.contains(where: { $0.key == c.arm }) else { throw ConfigError(path, "claims[\(i)].arm: no arm '\(c.arm)'") }
            for (j, ch) in c.checks.enumerated() {
                guard known.contains(ch.metric) else { throw ConfigError(path, "claims[\(i)].checks[\(j)].metric: unknown metric '\(ch.metric)' (known: \(list))") }
                if let o = ch.rule.other, !rows.contains(o) {
                    throw ConfigError(path, "claims[\(i)].checks[\(j)]: no arm or reference row '\(o)' (have: \(rows.sorted().joined(separator: ", ")))")
                }
            }
        }
        for (i, m) in (leaderboard?.metrics ?? []).enumerated() where !known.contains(m) {
            throw ConfigError(path, "leaderboard.metrics[\(i)]: unknown metric '\(m)' (known: \(list))")
        }
    }

    /// A section (`evaluation`, `references`) as the file sets it, overridden by the profile's
    /// section and then by `--set <section>.…`.
    public func section(_ name: String, profile: String, overrides: [(String, Any)]) -> [String: Any] {
        var merged = deepMerge(sections[name] ?? [:], profiles[profile]?[name] as? [String: Any] ?? [:])
        for (keyPath, value) in overrides where keyPath.hasPrefix(name + ".") {
            merged = setting(merged, keyPath.split(separator: ".").dropFirst().map(String.init), value)
        }
        return merged
    }

    static func mapping(_ v: Any, _ key: String, _ path: String) throws -> [String: Any] {
        if let o = asOrdered(v) { return plain(o) as! [String: Any] }
        if v is NSNull { return [:] }
        throw ConfigError(path, "key '\(key)': expected a mapping")
    }

    /// `config` with one arm's changes, no profile: the file as written.
    public func asWritten(arm: String) throws -> [String: Any] {
        guard let a = arms.first(where: { $0.key == arm }) else { throw ConfigError(path, "no arm '\(arm)' (have: \(arms.map(\.key).joined(separator: ", ")))") }
        return deepMerge(config, plain(a.value) as? [String: Any] ?? [:])
    }

    /// The resolved configuration of one arm: config ← profile ← arm ← overrides.
    public func resolved(arm: String, profile: String, overrides: [(String, Any)]) throws -> [String: Any] {
        guard let p = profiles[profile] else { throw ConfigError(path, "no profile '\(profile)' (have: \(profiles.keys.sorted().joined(separator: ", ")))") }
        guard let a = arms.first(where: { $0.key == arm }) else { throw ConfigError(path, "no arm '\(arm)' (have: \(arms.map(\.key).joined(separator: ", ")))") }
        var merged = config
        for layer in [p.filter { !Self.sectionKeys.contains($0.key) }, plain(a.value) as? [String: Any] ?? [:]] { merged = deepMerge(merged, layer) }
        for (keyPath, value) in overrides where !Self.sectionKeys.contains(where: { keyPath.hasPrefix($0 + ".") }) {
            merged = setting(merged, keyPath.split(separator: ".").map(String.init), value)
        }
        return merged
    }
}

/// Parses `a.b=value` (value as YAML: 3, 0.5, true, text) into a key path and value.
public func parseOverride(_ s: String) throws -> (String, Any) {
    guard let eq = s.firstIndex(of: "="), eq != s.startIndex else { throw ConfigError("--set", "'\(s)' is not key=value") }
    let key = String(s[..<eq]), raw = String(s[s.index(after: eq)...])
    let value = (try? Yams.compose(yaml: raw)).flatMap { $0 }.map(scalarOrTree) ?? raw
    if let d = value as? Double, !d.isFinite { throw ConfigError("--set", "key '\(key)': expected a finite number, got \(raw)") }
    return (key.hasPrefix("config.") ? String(key.dropFirst("config.".count)) : key, value)
}

func deepMerge(_ a: [String: Any], _ b: [String: Any]) -> [String: Any] {
    var out = a
    for (k, v) in b {
        if let av = out[k] as? [String: Any], let bv = v as? [String: Any] { out[k] = deepMerge(av, bv) } else { out[k] = v }
    }
    return out
}

func setting(_ d: [String: Any], _ path: [String], _ value: Any) -> [String: Any] {
    var out = d
    if path.count == 1 { out[path[0]] = value; return out }
    out[path[0]] = setting(out[path[0]] as? [String: Any] ?? [:], Array(path.dropFirst()), value)
    return out
}

/// `v` as a YAML mapping, or nil for anything else: an empty list included.
func asOrdered(_ v: Any) -> Ordered? { type(of: v) == Ordered.self ? v as? Ordered : nil }

/// YAML node → Swift values with ordered mappings.
func orderedMapping(_ node: Node) -> Ordered? {
    guard case .mapping(let m) = node else { return nil }
    return m.map { (k, v) in (k.string ?? "\(k)", scalarOrTree(v)) }
}

func scalarOrTree(_ node: Node) -> Any {
    switch node {
    case .mapping: return orderedMapping(node)!
    case .sequence(let s): return s.map(scalarOrTree)
    case .scalar(let s):
        if s.style == .plain {
            if let i = Int(s.string) { return i }
            if let d = Double(s.string) { return d }
            if ["true", "false"].contains(s.string.lowercased()) { return s.string.lowercased() == "true" }
            if ["null", "~", ""].contains(s.string) { return NSNull() }
        }
        return s.string
    default: return NSNull()   // aliases
    }
}

/// Ordered mappings → dictionaries, recursively. An empty `[Any]` also casts to `Ordered`, so
/// a mapping is told from a list by its dynamic type: `xs: []` stays a list.
func plain(_ v: Any) -> Any {
    if let o = asOrdered(v) { return Dictionary(o.map { ($0.key, plain($0.value)) }, uniquingKeysWith: { a, _ in a }) }
    if let a = v as? [Any] { return a.map(plain) }
    return v
}

/// Decodes a resolved configuration into `T` (snake_case keys), rejecting unknown keys and
/// wrong types with the key's path.
public func decodeConfig<T: Codable>(_ type: T.Type, from dict: [String: Any], file: String, key prefix: String = "config") throws -> T {
    let data = try JSONSerialization.data(withJSONObject: dict)
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    let value: T
    do { value = try decoder.decode(T.self, from: data) } catch let e as DecodingError {
        throw ConfigError(file, describe(e, prefix))
    }
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    let known = try JSONSerialization.jsonObject(with: encoder.encode(value))
    if let unknown = unknownKeys(dict, known as? [String: Any] ?? [:], prefix: prefix).first {
        throw ConfigError(file, "unknown key '\(unknown)'")
    }
    return value
}

/// Keys of `given` absent from `known` (optional fields left nil are absent from `known`
/// too, so a given nil-able key that decoded to nil is accepted only when null).
func unknownKeys(_ given: [String: Any], _ known: [String: Any], prefix: String) -> [String] {
    given.keys.sorted().flatMap { k -> [String] in
        guard let kv = known[k] else { return given[k] is NSNull ? [] : ["\(prefix).\(k)"] }
        if let g = given[k] as? [String: Any], let kd = kv as? [String: Any] { return unknownKeys(g, kd, prefix: "\(prefix).\(k)") }
        return []
    }
}

func describe(_ e: DecodingError, _ prefix: String) -> String {
    func path(_ c: [CodingKey]) -> String { ([prefix] + c.map { $0.intValue.map(String.init) ?? snake($0.stringValue) }).joined(separator: ".") }
    switch e {
    case .typeMismatch(let t, let c): return "key '\(path(c.codingPath))': expected \(t)"
    case .valueNotFound(let t, let c): return "key '\(path(c.codingPath))': expected \(t), found null"
    case .keyNotFound(let k, let c): return "key '\(path(c.codingPath + [k]))' is required"
    case .dataCorrupted(let c): return "key '\(path(c.codingPath))': \(c.debugDescription)"
    @unknown default: return "\(e)"
    }
}

func snake(_ s: String) -> String {
    var out = ""
    for ch in s { if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) } }
    return out
}

/// A YAML syntax error in one line: "line L, column C: problem (context)".
func yamlErrorLine(_ error: Error) -> String {
    func at(_ mark: Mark, _ problem: String, _ context: YamlError.Context?) -> String {
        "not valid YAML at line \(mark.line), column \(mark.column): \(problem)" + (context.map { " (\($0.text))" } ?? "")
    }
    switch error as? YamlError {
    case let .scanner(context, problem, mark, _)?, let .parser(context, problem, mark, _)?, let .composer(context, problem, mark, _)?:
        return at(mark, problem, context)
    case let .duplicatedKeysInMapping(duplicates, context)?:
        return at(context.mark, "duplicated keys \(duplicates.joined(separator: ", "))", nil)
    default:
        return "not valid YAML: " + ("\(error)".split(separator: "\n").first.map(String.init) ?? "")
    }
}
