import CHDF5
import CPNG
import Engine
import Foundation
import HDF5Shim
import TestSupport
import XCTest

/// The system-library modules link, and the HDF5 shim's constants work for a real round trip.
final class SystemLibraryTests: XCTestCase {
    func testHDF5RoundTripThroughTheShim() throws {
        replica_H5_silence_errors()
        let path = NSTemporaryDirectory() + "replica-shim-\(getpid()).h5"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let values: [Float] = [1.5, -2, 3.25, 0, 7, 8]
        let file = H5Fcreate(path, replica_H5F_ACC_TRUNC(), replica_H5P_DEFAULT(), replica_H5P_DEFAULT())
        XCTAssertGreaterThanOrEqual(file, 0)
        var dims: [hsize_t] = [2, 3]
        let space = H5Screate_simple(2, &dims, nil)
        let dset = H5Dcreate2(file, "weights", replica_H5T_NATIVE_FLOAT(), space, replica_H5P_DEFAULT(), replica_H5P_DEFAULT(), replica_H5P_DEFAULT())
        XCTAssertGreaterThanOrEqual(dset, 0)
        XCTAssertGreaterThanOrEqual(H5Dwrite(dset, replica_H5T_NATIVE_FLOAT(), replica_H5S_ALL(), replica_H5S_ALL(), replica_H5P_DEFAULT(), values), 0)
        H5Dclose(dset); H5Sclose(space); H5Fclose(file)

        let rf = H5Fopen(path, replica_H5F_ACC_RDONLY(), replica_H5P_DEFAULT())
        let rd = H5Dopen2(rf, "weights", replica_H5P_DEFAULT())
        var back = [Float](repeating: 0, count: 6)
        XCTAssertGreaterThanOrEqual(H5Dread(rd, replica_H5T_NATIVE_FLOAT(), replica_H5S_ALL(), replica_H5S_ALL(), replica_H5P_DEFAULT(), &back), 0)
        H5Dclose(rd); H5Fclose(rf)
        XCTAssertEqual(back, values)
        // A missing file is an error code, not a crash.
        XCTAssertLessThan(H5Fopen(path + ".missing", replica_H5F_ACC_RDONLY(), replica_H5P_DEFAULT()), 0)
    }

    func testLibPNGIsLinked() {
        XCTAssertGreaterThanOrEqual(png_access_version_number(), 10600)
    }
}
