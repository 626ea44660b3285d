// swift-tools-version:6.0
import PackageDescription

// Layers import downward only: Engine ← NN ← (Datasets, Evaluation) ← Harness ← Representation
// ← one target per paper ← CLI (docs/architecture.md). No unsafeFlags: other packages must be
// able to depend on us.
let package = Package(
    name: "Replica",
    products: [
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "NN", targets: ["NN"]),
        .executable(name: "replica", targets: ["Replica"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libhdf5-dev, libpng-dev, libopenmpi-dev; `make deps`).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial",
                       providers: [.apt(["libhdf5-dev"])]),
        // Open MPI (libopenmpi-dev): data-parallel training under mpirun (Engine's Distributed).
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CZLib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        // HDF5's constants (H5P_DEFAULT, H5T_NATIVE_FLOAT, ...) are C macros Swift cannot import.
        .target(name: "HDF5Shim", dependencies: ["CHDF5"]),
        // MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ... are macros too.
        .target(name: "MPIShim", dependencies: ["CMPI"]),

        .target(name: "Engine", dependencies: ["CBLAS", "CKernels", "MPIShim"]),
        .target(name: "PNGShim", dependencies: ["CPNG"]),
        .target(name: "HDF5IO", dependencies: ["CHDF5", "HDF5Shim"]),
        .target(name: "NN", dependencies: ["Engine", "HDF5IO", "CKernels"]),
        .target(name: "Datasets", dependencies: ["Engine", "HDF5IO", "CZLib", "PNGShim"]),
        .target(name: "CKernels"),
        .target(name: "Evaluation", dependencies: ["Engine", "NN", "CBLAS", "CKernels"]),
        .target(name: "Harness", dependencies: ["Engine", "NN", "Datasets", "Evaluation", .product(name: "Yams", package: "Yams")]),
        // What every representation-learning paper shares: data with its statistics, views,
        // reference rows, backbone features.
        .target(name: "Representation", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness"]),
        // One target per paper (docs/adding-a-method.md).
        .target(name: "Baselines", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness", "Representation"]),
        .target(name: "SimSiam", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness", "Representation"]),
        .target(name: "SimCLR", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness", "Representation"]),
        .target(name: "SupCon", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness", "Representation"]),
        .target(name: "PCL", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness", "Representation"]),
        .target(name: "DeepCluster", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness", "Representation"]),
        .target(name: "NAT", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness", "Representation"]),
        .target(name: "RankedListLoss", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness", "Representation"]),
        .target(name: "FactorVAE", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness", "HDF5IO"]),
        .target(name: "LVAE", dependencies: ["Engine", "NN", "Datasets", "Evaluation", "Harness"]),

        .executableTarget(name: "Replica", dependencies: [
            "Engine", "NN", "Datasets", "Evaluation", "Harness", "Representation", "Baselines", "SimSiam", "SimCLR", "SupCon", "PCL", "DeepCluster", "NAT", "RankedListLoss", "FactorVAE", "LVAE", "HDF5IO",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Shared by every test target: temporary folders, finite differences, smoke runs.
        .target(name: "TestSupport", dependencies: ["Engine", "Datasets", "Harness"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "CKernels", "HDF5Shim", "CHDF5", "CPNG", "TestSupport"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Engine", "HDF5IO", "CZLib", "TestSupport"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "CKernels", "Engine", "TestSupport"]),
        .testTarget(name: "HarnessTests", dependencies: ["Harness", "Baselines", "Representation", "Datasets", "Engine", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "HDF5IO", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["Datasets", "Engine", "HDF5IO", "TestSupport"]),
        .testTarget(name: "SimSiamTests", dependencies: ["SimSiam", "Representation", "Harness", "Datasets", "Evaluation", "NN", "Engine", "TestSupport"]),
        // Fixtures/: losses and gradients from pytorch-metric-learning (Fixtures/make_fixtures.py).
        .testTarget(name: "SimCLRTests", dependencies: ["SimCLR", "Representation", "Harness", "Datasets", "Evaluation", "NN", "Engine", "TestSupport"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "SupConTests", dependencies: ["SupCon", "SimCLR", "Representation", "Harness", "Datasets", "Evaluation", "NN", "Engine", "TestSupport"]),
        .testTarget(name: "PCLTests", dependencies: ["PCL", "Representation", "Harness", "Datasets", "Evaluation", "NN", "Engine", "TestSupport"]),
        .testTarget(name: "DeepClusterTests", dependencies: ["DeepCluster", "Representation", "Harness", "Datasets", "Evaluation", "NN", "Engine", "TestSupport"]),
        .testTarget(name: "NATTests", dependencies: ["NAT", "Representation", "Harness", "Datasets", "Evaluation", "NN", "Engine", "TestSupport"]),
        // Fixtures/: losses and gradients from pytorch-metric-learning (Fixtures/make_fixtures.py).
        .testTarget(name: "FactorVAETests", dependencies: ["FactorVAE", "Harness", "Datasets", "Evaluation", "NN", "Engine", "TestSupport"]),
        .testTarget(name: "LVAETests", dependencies: ["LVAE", "Harness", "Datasets", "Evaluation", "NN", "Engine", "TestSupport"]),
        .testTarget(name: "RankedListLossTests", dependencies: ["RankedListLoss", "Harness", "Datasets", "Evaluation", "NN", "Engine", "TestSupport"],
                    exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v5]
)
