#ifndef REPLICA_PNG_SHIM_H
#define REPLICA_PNG_SHIM_H
// libpng reports errors with longjmp, which Swift cannot catch; these wrappers hold the
// setjmp and return an error message instead.
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t width, height;
    int channels;    // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (palettes expand to 3 or 4)
    int bit_depth;   // 8 or 16 (gray below 8 bits expands to 8)
    uint16_t *samples;   // width*height*channels samples, row-major; free with replica_png_free
} replica_png_image;

/// Returns 0 on success; otherwise writes a message into err.
int replica_png_read(const char *path, replica_png_image *out, char *err, size_t errlen);
void replica_png_free(replica_png_image *img);
/// Writes samples (channels 1-4, bit depth 8 or 16). palette != NULL writes an 8-bit
/// palette image instead: samples are indices, palette is n_palette RGB triples.
int replica_png_write(const char *path, const uint16_t *samples, uint32_t width, uint32_t height,
                      int channels, int bit_depth, const uint8_t *palette, int n_palette, char *err, size_t errlen);
/// The libpng version this process runs with ("1.6.39").
const char *replica_png_version(void);
#endif
