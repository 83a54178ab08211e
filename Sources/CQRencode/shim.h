#ifndef WAYBILL_CQRENCODE_SHIM_H
#define WAYBILL_CQRENCODE_SHIM_H
#include <qrencode.h>
#endif
