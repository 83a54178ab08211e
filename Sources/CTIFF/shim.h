#ifndef WAYBILL_CTIFF_SHIM_H
#define WAYBILL_CTIFF_SHIM_H
#include <tiffio.h>
#include <stdbool.h>

/// TIFFGetField is variadic, which Swift cannot call.
static inline bool waybillTIFFGetDimensions(TIFF *tiff, uint32_t *width, uint32_t *height) {
    return TIFFGetField(tiff, TIFFTAG_IMAGEWIDTH, width) == 1 && TIFFGetField(tiff, TIFFTAG_IMAGELENGTH, height) == 1;
}

/// Resolution in pixels per inch (0 when absent); centimetres converted.
static inline void waybillTIFFGetResolution(TIFF *tiff, float *x, float *y) {
    float rx = 0, ry = 0;
    uint16_t unit = RESUNIT_INCH;
    if (TIFFGetField(tiff, TIFFTAG_XRESOLUTION, &rx) != 1) rx = 0;
    if (TIFFGetField(tiff, TIFFTAG_YRESOLUTION, &ry) != 1) ry = rx;
    TIFFGetFieldDefaulted(tiff, TIFFTAG_RESOLUTIONUNIT, &unit);
    if (unit == RESUNIT_CENTIMETER) { rx *= 2.54f; ry *= 2.54f; }
    *x = rx; *y = ry;
}
#endif
