#include <cblas.h>
// glibc's allocator tuning (mallopt), used by the engine at start-up; Swift's Glibc module
// does not export <malloc.h>.
#include <malloc.h>
