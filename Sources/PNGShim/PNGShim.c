#include "PNGShim.h"
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *buf; size_t len; } err_sink;

static void on_error(png_structp png, png_const_charp msg) {
    err_sink *e = (err_sink *)png_get_error_ptr(png);
    if (e && e->buf) snprintf(e->buf, e->len, "%s", msg);
    png_longjmp(png, 1);
}
static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int replica_png_read(const char *path, replica_png_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "cannot open (no such file?)"); return 1; }
    unsigned char sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) { fclose(f); snprintf(err, errlen, "not a PNG file (bad signature)"); return 1; }
    err_sink sink = { err, errlen };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = NULL;
    uint16_t *volatile samples = NULL;
    if (!png || !info) { fclose(f); snprintf(err, errlen, "out of memory"); return 1; }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows); free(samples); fclose(f);
        return 1;
    }
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_swap(png);   // host (little-endian) order
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info), outDepth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    unsigned char *data = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!data || !rows) { snprintf(err, errlen, "out of memory"); png_longjmp(png, 1); }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = data + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    size_t n = (size_t)w * h * channels;
    samples = malloc(sizeof(uint16_t) * (n ? n : 1));
    if (!samples) { free(data); snprintf(err, errlen, "out of memory"); png_longjmp(png, 1); }
    for (size_t i = 0; i < n; i++) samples[i] = outDepth == 16 ? ((uint16_t *)data)[i] : data[i];
    free(data); free(rows); rows = NULL;
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    out->width = w; out->height = h; out->channels = channels; out->bit_depth = outDepth; out->samples = samples;
    return 0;
}

void replica_png_free(replica_png_image *img) { free(img->samples); img->samples = NULL; }

int replica_png_write(const char *path, const uint16_t *samples, uint32_t width, uint32_t height,
                      int channels, int bit_depth, const uint8_t *palette, int n_palette, char *err, size_t errlen) {
    static const int types[] = { 0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA };
    if ((channels < 1 || channels > 4) && !palette) { snprintf(err, errlen, "unsupported channel count %d", channels); return 1; }
    if (bit_depth != 8 && bit_depth != 16) { snprintf(err, errlen, "unsupported bit depth %d", bit_depth); return 1; }
    FILE *f = fopen(path, "wb");
    if (!f) { snprintf(err, errlen, "cannot create file"); return 1; }
    err_sink sink = { err, errlen };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *volatile row = NULL;
    if (!png || !info) { fclose(f); snprintf(err, errlen, "out of memory"); return 1; }
    if (setjmp(png_jmpbuf(png))) { png_destroy_write_struct(&png, &info); free(row); fclose(f); return 1; }
    png_init_io(png, f);
    int ch = palette ? 1 : channels, depth = palette ? 8 : bit_depth;
    png_set_IHDR(png, info, width, height, depth, palette ? PNG_COLOR_TYPE_PALETTE : types[channels],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (palette) {
        png_color pal[256];
        for (int i = 0; i < n_palette && i < 256; i++) { pal[i].red = palette[3*i]; pal[i].green = palette[3*i+1]; pal[i].blue = palette[3*i+2]; }
        png_set_PLTE(png, info, pal, n_palette);
    }
    png_write_info(png, info);
    if (depth == 16) png_set_swap(png);
    size_t per_row = (size_t)width * ch;
    row = malloc(per_row * (depth / 8) + 1);
    if (!row) { snprintf(err, errlen, "out of memory"); png_longjmp(png, 1); }
    for (uint32_t y = 0; y < height; y++) {
        const uint16_t *s = samples + (size_t)y * per_row;
        if (depth == 16) for (size_t i = 0; i < per_row; i++) ((uint16_t *)row)[i] = s[i];
        else for (size_t i = 0; i < per_row; i++) row[i] = (unsigned char)s[i];
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(f) != 0) { snprintf(err, errlen, "cannot finish writing"); return 1; }
    return 0;
}

const char *replica_png_version(void) { return png_get_libpng_ver(NULL); }
