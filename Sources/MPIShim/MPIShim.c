#include "MPIShim.h"

#include <limits.h>
#include <mpi.h>

int replica_mpi_init(void) {
    int provided = 0;
    return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
}

int replica_mpi_rank(void) { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
int replica_mpi_size(void) { int s = 1; MPI_Comm_size(MPI_COMM_WORLD, &s); return s; }

// MPI counts are ints: the engine's buffers stay far below 2^31 elements, and a larger one
// is refused rather than truncated.
#define REPLICA_COUNT(n) do { if ((n) < 0 || (n) > INT_MAX) return MPI_ERR_COUNT; } while (0)

int replica_mpi_allreduce_float(float *buffer, long count) {
    REPLICA_COUNT(count);
    return MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

int replica_mpi_allreduce_double(double *buffer, long count) {
    REPLICA_COUNT(count);
    return MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

int replica_mpi_allreduce_max_long(long *buffer, long count) {
    REPLICA_COUNT(count);
    return MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
}

int replica_mpi_allgather_float(const float *send, long count, float *receive) {
    REPLICA_COUNT(count);
    return MPI_Allgather(send, (int)count, MPI_FLOAT, receive, (int)count, MPI_FLOAT, MPI_COMM_WORLD);
}

int replica_mpi_allgather_long(const long *send, long count, long *receive) {
    REPLICA_COUNT(count);
    return MPI_Allgather(send, (int)count, MPI_LONG, receive, (int)count, MPI_LONG, MPI_COMM_WORLD);
}

int replica_mpi_bcast_float(float *buffer, long count, int root) {
    REPLICA_COUNT(count);
    return MPI_Bcast(buffer, (int)count, MPI_FLOAT, root, MPI_COMM_WORLD);
}

int replica_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
void replica_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
int replica_mpi_finalize(void) { return MPI_Finalize(); }
