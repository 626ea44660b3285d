import ArgumentParser
import Datasets
import Engine
import Foundation
import Harness

/// `replica data pictures`: PNG grids that let a person check the transforms and the renderer.
struct DataPictures: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pictures",
        abstract: "Write results/datasets/fashion-mnist-augmented.png and dsprites-factors.png.")
    @Option(help: "Fashion-MNIST dataset file.") var data: String = "data/fashion-mnist.h5"
    @Option(help: "Output folder.") var out: String = "results/datasets"

    func run() throws {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        // Rows: 8 test images, one per class; columns: the original, then 7 augmented views
        // (SimSiam's grayscale recipe, the same draws as in training).
        let (set, _, _) = try DatasetFile.read(data, split: "test")
        var firstOfClass: [Int] = []
        for c in 0..<8 { if let i = set.labels.firstIndex(of: c) { firstOfClass.append(i) } }
        var cells: [[UInt8]] = []
        for i in firstOfClass {
            let original = Image(set, i)
            cells.append(original.data.map { UInt8(($0 * 255).rounded()) })
            for view in benchAugmentation.views(original, count: 7, rng: RNG(seed: 0).derive(UInt64(i))) {
                cells.append(view.data.map { UInt8((Swift.min(Swift.max($0 * 0.3530 + 0.2860, 0), 1) * 255).rounded()) })
            }
        }
        try writePNGGrid(cells, rows: firstOfClass.count, columns: 8, height: 28, width: 28, scale: 3, to: out + "/fashion-mnist-augmented.png")
        // Rows: square, ellipse, heart at scales 0.5, 0.8 and 1.0; columns: 8 orientations.
        var sprites: [[UInt8]] = []
        for shape in DSprites.Shape.allCases {
            for scale in [0, 3, 5] {
                for o in stride(from: 0, to: 40, by: 5) {
                    var img = [UInt8](repeating: 0, count: 4096)
                    img.withUnsafeMutableBufferPointer { DSprites.render(shape: shape, scaleClass: scale, orientationClass: o, posX: 16, posY: 16, into: $0.baseAddress!) }
                    sprites.append(img.map { $0 * 255 })
                }
            }
        }
        try writePNGGrid(sprites, rows: 9, columns: 8, height: 64, width: 64, scale: 1, to: out + "/dsprites-factors.png")
        print("wrote \(out)/fashion-mnist-augmented.png and \(out)/dsprites-factors.png")
    }
}
