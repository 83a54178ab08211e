#ifndef WAYBILL_CZLIB_SHIM_H
#define WAYBILL_CZLIB_SHIM_H
#include <zlib.h>
#endif
