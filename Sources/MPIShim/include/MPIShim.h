#ifndef REPLICA_MPI_SHIM_H
#define REPLICA_MPI_SHIM_H

// The part of the MPI C API the engine uses, as plain functions: MPI_COMM_WORLD, MPI_FLOAT
// and MPI_SUM are macros over Open MPI's globals that Swift cannot import. Every call works
// on MPI_COMM_WORLD and returns MPI's error code (0 on success); the engine aborts on any
// other value.

/// MPI_Init_thread (MPI_THREAD_FUNNELED: only the training thread calls MPI). Returns 0 on
/// success.
int replica_mpi_init(void);
int replica_mpi_rank(void);
int replica_mpi_size(void);
/// In-place sums over all ranks.
int replica_mpi_allreduce_float(float *buffer, long count);
int replica_mpi_allreduce_double(double *buffer, long count);
/// In-place maximum over all ranks.
int replica_mpi_allreduce_max_long(long *buffer, long count);
/// `count` values from every rank into `receive` (size × count), in rank order.
int replica_mpi_allgather_float(const float *send, long count, float *receive);
int replica_mpi_allgather_long(const long *send, long count, long *receive);
int replica_mpi_bcast_float(float *buffer, long count, int root);
int replica_mpi_barrier(void);
/// Ends every rank with `code` (MPI_Abort); does not return.
void replica_mpi_abort(int code);
int replica_mpi_finalize(void);

#endif
