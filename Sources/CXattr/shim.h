#ifndef WAYBILL_CXATTR_SHIM_H
#define WAYBILL_CXATTR_SHIM_H
// Extended attributes (glibc's sys/xattr.h), which Swift's Glibc module does not export.
#include <sys/xattr.h>
#endif
