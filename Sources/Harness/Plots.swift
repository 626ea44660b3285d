import Evaluation
import Foundation

/// One panel per metric (loss and monitors over epochs), one line per arm, reference rows
/// as dashed horizontal lines in the panels of metrics they have, labelled axes and a
/// legend. Plain SVG, no dependencies.
public func curvesSVG(arms: [(String, [[String: Double]])], references: [(name: String, metrics: [String: Double])] = [], title: String,
                      metrics known: [Metric] = []) -> String {
    let labels = Dictionary(known.map { ($0.key, $0.label) }, uniquingKeysWith: { a, _ in a })
    let metrics = Array(Set(arms.flatMap { $0.1.flatMap { $0.keys } })).filter { $0 != "epoch" }.sorted()
    let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    let pw = 420.0, ph = 260.0, margin = 56.0, cols = 2
    let rows = (metrics.count + cols - 1) / cols
    let width = Double(cols) * (pw + margin) + margin, height = Double(rows) * (ph + margin + 20) + 90
    var s = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
             "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
             "<text x=\"\(margin)\" y=\"24\" font-size=\"16\">\(escape(title))</text>"]
    let refColors = ["#555555", "#999999", "#bcbd22", "#7f7f7f"]
    var x = margin
    for (i, name) in arms.map(\.0).enumerated() {
        s.append("<line x1=\"\(x)\" y1=\"44\" x2=\"\(x + 24)\" y2=\"44\" stroke=\"\(colors[i % colors.count])\" stroke-width=\"2.5\"/>")
        s.append("<text x=\"\(x + 30)\" y=\"48\">\(escape(name))</text>")
        x += 44 + 7 * Double(name.count)
    }
    for (i, r) in references.enumerated() {
        s.append("<line x1=\"\(x)\" y1=\"44\" x2=\"\(x + 24)\" y2=\"44\" stroke=\"\(refColors[i % refColors.count])\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\"/>")
        s.append("<text x=\"\(x + 30)\" y=\"48\">\(escape(r.name))</text>")
        x += 44 + 7 * Double(r.name.count)
    }
    for (k, metric) in metrics.enumerated() {
        let ox = margin + Double(k % cols) * (pw + margin), oy = 70 + Double(k / cols) * (ph + margin + 20)
        let series = arms.map { arm in arm.1.compactMap { row in row[metric].flatMap { v in row["epoch"].map { ($0, v) } } }.filter { $0.1.isFinite } }
        let levels = references.enumerated().compactMap { i, r in r.metrics[metric].flatMap { $0.isFinite ? (i, $0) : nil } }
        let xs = series.flatMap { $0.map(\.0) }, ys = series.flatMap { $0.map(\.1) } + levels.map(\.1)
        guard let x0 = xs.min(), let x1 = xs.max(), let ylo = ys.min(), let yhi = ys.max() else { continue }
        let yTicks = niceTicks(ylo, yhi), (y0, y1) = (yTicks.first!, yTicks.last!)
        func px(_ x: Double) -> Double { ox + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * pw }
        func py(_ y: Double) -> Double { oy + ph - (y - y0) / (y1 - y0) * ph }
        s.append("<rect x=\"\(ox)\" y=\"\(oy)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#999\"/>")
        let label = labels[metric].map { "\(metric): \($0)" } ?? metric
        s.append("<text x=\"\(ox + pw / 2)\" y=\"\(oy - 6)\" text-anchor=\"middle\" font-weight=\"bold\">\(escape(label))</text>")
        s.append("<text x=\"\(ox + pw / 2)\" y=\"\(oy + ph + 32)\" text-anchor=\"middle\">epoch</text>")
        for yv in yTicks {
            s.append("<text x=\"\(ox - 4)\" y=\"\(py(yv) + 4)\" text-anchor=\"end\" font-size=\"10\">\(tickLabel(yv, yTicks))</text>")
            s.append("<line x1=\"\(ox)\" y1=\"\(py(yv))\" x2=\"\(ox + pw)\" y2=\"\(py(yv))\" stroke=\"#eee\"/>")
        }
        for xv in niceTicks(x0, x1, count: 5, integers: true) where xv >= x0 && xv <= x1 {
            s.append("<text x=\"\(px(xv))\" y=\"\(oy + ph + 16)\" text-anchor=\"middle\" font-size=\"10\">\(tickLabel(xv, [xv]))</text>")
        }
        for (i, v) in levels {
            s.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\"/>",
                            ox, py(v), ox + pw, py(v), refColors[i % refColors.count]))
        }
        for (i, pts) in series.enumerated() where !pts.isEmpty {
            let c = colors[i % colors.count]
            s.append("<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"" + pts.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ") + "\"/>")
            for p in pts { s.append(String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%@\"/>", px(p.0), py(p.1), c)) }
        }
    }
    s.append("</svg>")
    return s.joined(separator: "\n") + "\n"
}

func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}

/// Axis ticks at round values (steps of 1, 2, 2.5 or 5 × 10ᵏ) covering [lo, hi], about
/// `count` of them: 0.7426…0.8123 → 0.74, 0.76, …, 0.82.
public func niceTicks(_ lo: Double, _ hi: Double, count: Int = 5, integers: Bool = false) -> [Double] {
    var (lo, hi) = (lo, hi)
    if hi - lo < 1e-12 * Swift.max(1, abs(lo)) { lo -= Swift.max(abs(lo) * 0.05, 0.5); hi += Swift.max(abs(hi) * 0.05, 0.5) }
    let raw = (hi - lo) / Double(Swift.max(count - 1, 1)), p = pow(10, floor(log10(raw)))
    var step = [1, 2, 2.5, 5, 10].map { $0 * p }.first { $0 >= raw } ?? 10 * p
    if integers { step = Swift.max(1, step.rounded(.up)) }
    let first = floor(lo / step + 1e-9), last = ceil(hi / step - 1e-9)
    return stride(from: first, through: last, by: 1).map { ($0 * step * 1e9).rounded() / 1e9 }
}

/// A tick's text with as many decimals as the ticks' step needs.
func tickLabel(_ v: Double, _ ticks: [Double]) -> String {
    let step = ticks.count > 1 ? abs(ticks[1] - ticks[0]) : 1
    var decimals = 0
    while decimals < 8, abs((step * pow(10, Double(decimals))).rounded() - step * pow(10, Double(decimals))) > 1e-6 { decimals += 1 }
    let text = String(format: "%.\(decimals)f", v)
    return text == "-" + String(format: "%.\(decimals)f", 0.0) ? String(format: "%.\(decimals)f", 0.0) : text
}
