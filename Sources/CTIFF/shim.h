#ifndef WAYBILL_CTIFF_SHIM_H
#define WAYBILL_CTIFF_SHIM_H
#include <tiffio.h>
#include <stdbool.h>

/// TIFFGetField is variadic, which Swift cannot call.
static inline bool waybillTIFFGetDimensions(TIFF *tiff, uint32_t *width, uint32_t *height) {
    return TIFFGetField(tiff, TIFFTAG_IMAGEWIDTH, width) == 1 && TIFFGetField(tiff, TIFFTAG_IMAGELENGTH, height) == 1;
}
#endif
