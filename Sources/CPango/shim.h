#ifndef WAYBILL_CPANGO_SHIM_H
#define WAYBILL_CPANGO_SHIM_H
#include <pango/pangocairo.h>
#endif
