#ifndef WAYBILL_CPOPPLER_SHIM_H
#define WAYBILL_CPOPPLER_SHIM_H
#include <poppler.h>
#include <cairo.h>
#include <cairo-pdf.h>
#endif
