#ifndef WAYBILL_CZINT_SHIM_H
#define WAYBILL_CZINT_SHIM_H
#include <zint.h>

/// zint keeps modules as bits in a fixed 2-D array that Swift imports as nested tuples;
/// this reads one module the way zint's own `module_is_set` macro does.
static inline int waybill_zint_module_is_set(const struct zint_symbol *symbol, int row, int column) {
    return (symbol->encoded_data[row][column >> 3] >> (column & 0x07)) & 1;
}
#endif
