#ifndef REPLICA_HDF5_SHIM_H
#define REPLICA_HDF5_SHIM_H
// HDF5 exposes its property-list and type identifiers as C macros (many expand to a call
// that opens the library first), which Swift cannot import. These functions return them.
#include <hdf5.h>

hid_t replica_H5P_DEFAULT(void);
hid_t replica_H5S_ALL(void);
hid_t replica_H5P_DATASET_CREATE(void);
hid_t replica_H5T_NATIVE_UINT8(void);
hid_t replica_H5T_NATIVE_INT64(void);
hid_t replica_H5T_NATIVE_FLOAT(void);
hid_t replica_H5T_NATIVE_DOUBLE(void);
hid_t replica_H5T_C_S1(void);
hid_t replica_H5P_LINK_CREATE(void);
size_t replica_H5T_VARIABLE(void);
unsigned replica_H5F_ACC_RDONLY(void);
unsigned replica_H5F_ACC_RDWR(void);
unsigned replica_H5F_ACC_TRUNC(void);
/// Turns off HDF5's automatic error printing so callers can report one clear message.
void replica_H5_silence_errors(void);

#endif
