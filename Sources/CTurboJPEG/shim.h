#ifndef WAYBILL_CTURBOJPEG_SHIM_H
#define WAYBILL_CTURBOJPEG_SHIM_H
#include <turbojpeg.h>
#endif
