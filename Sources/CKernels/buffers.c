#include "CKernels.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

// Tensor buffers. A training step frees and reallocates the same large activations every
// step; served by glibc (which the engine keeps from trimming, so that reuse does not
// page-fault), they fragment its heaps and arenas: ResNet-18's step held 1.1 GB of tensors
// and 1.8–2.3 GB of resident memory, varying with which thread freed what. Here every
// buffer of at least 1 MiB is a whole mapping of its size class (eight classes per power of
// two, so at most 12.5% rounding), and a freed one waits on its class's list for the next
// request of that class: a loop that repeats its allocations reuses its own blocks, faults
// no page after the first step, and holds about its peak of live tensors. When a request
// finds its list empty while more bytes wait idle than are in use, for a size nobody has
// asked for in the last RECENT large requests (a new phase: evaluation after training,
// another batch size), the idle blocks are unmapped first, so a phase does not keep the
// last one's blocks. A recent size that misses only maps a block: an inference pass frees
// each activation as soon as the next layer has read it, so it always has more idle than
// live bytes, and releasing there on every miss made each step unmap and fault its
// activations afresh (R7's features pass: four releases a step, 4 ms of munmap and the
// page faults after it). Smaller buffers go to malloc (64-byte aligned).

#define LARGE ((size_t)1 << 20)
#define STEPS 8
#define CLASSES (64 * STEPS)
#define RECENT ((uint64_t)1 << 16)

static void *free_lists[CLASSES];
static size_t idle_bytes, used_bytes;   // large blocks waiting on the lists, and handed out
static uint64_t requests, last_request[CLASSES];   // large requests so far; each class's last (1-based, 0: never)
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t class_bytes(int c) {   // the size of class c = e · STEPS + j
    int e = c / STEPS, j = c % STEPS;
    return ((size_t)1 << e) + (size_t)j * ((size_t)1 << (e - 3));
}

static void release_idle(void) {   // with the lock held
    for (int c = 0; c < CLASSES; c++) {
        if (!free_lists[c]) continue;
        size_t size = class_bytes(c);
        while (free_lists[c]) {
            void *p = free_lists[c];
            free_lists[c] = *(void **)p;
            munmap(p, size);
        }
    }
    idle_bytes = 0;
}

// The class of a large request and its size: the smallest (8 + j) · 2^(e − 3) ≥ bytes.
static int size_class(size_t bytes, size_t *size) {
    int e = 63 - __builtin_clzll((unsigned long long)bytes);   // 2^e ≤ bytes < 2^(e+1)
    size_t unit = (size_t)1 << (e - 3);
    size_t j = (bytes - ((size_t)1 << e) + unit - 1) / unit;   // 0 … 8
    *size = ((size_t)1 << e) + j * unit;
    return e * STEPS + (int)j;   // j = 8 is the next power's j = 0: the same size, the same class
}

void *replica_buffer_alloc(size_t bytes) {
    if (bytes < LARGE) {
        void *p = NULL;
        return posix_memalign(&p, 64, bytes ? bytes : 1) == 0 ? p : NULL;
    }
    size_t size;
    int c = size_class(bytes, &size);
    pthread_mutex_lock(&lock);
    void *p = free_lists[c];
    int recent = last_request[c] != 0 && requests - last_request[c] < RECENT;
    last_request[c] = ++requests;
    if (p) {
        free_lists[c] = *(void **)p;
        idle_bytes -= size;
    } else if (idle_bytes > used_bytes && !recent) {
        release_idle();
    }
    used_bytes += size;
    pthread_mutex_unlock(&lock);
    if (p) return p;
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) return p;
    pthread_mutex_lock(&lock);
    used_bytes -= size;
    pthread_mutex_unlock(&lock);
    return NULL;
}

void replica_buffer_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < LARGE) { free(p); return; }
    size_t size;
    int c = size_class(bytes, &size);
    pthread_mutex_lock(&lock);
    *(void **)p = free_lists[c];
    free_lists[c] = p;
    idle_bytes += size;
    used_bytes -= size;
    pthread_mutex_unlock(&lock);
}

size_t replica_buffer_class_size(size_t bytes) {
    if (bytes < LARGE) return bytes;
    size_t size;
    size_class(bytes, &size);
    return size;
}

void replica_buffer_release_idle(void) {
    pthread_mutex_lock(&lock);
    release_idle();
    pthread_mutex_unlock(&lock);
}

void replica_buffer_stats(size_t *idle, size_t *used) {
    pthread_mutex_lock(&lock);
    *idle = idle_bytes;
    *used = used_bytes;
    pthread_mutex_unlock(&lock);
}
