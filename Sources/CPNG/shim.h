#ifndef WAYBILL_CPNG_SHIM_H
#define WAYBILL_CPNG_SHIM_H
#include <png.h>
#endif
