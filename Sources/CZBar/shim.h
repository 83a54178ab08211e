#ifndef WAYBILL_CZBAR_SHIM_H
#define WAYBILL_CZBAR_SHIM_H
#include <zbar.h>

/// `zbar_fourcc` is a macro Swift cannot call.
static inline unsigned long waybill_zbar_y800(void) { return zbar_fourcc('Y', '8', '0', '0'); }
#endif
