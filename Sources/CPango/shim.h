#ifndef WAYBILL_CPANGO_SHIM_H
#define WAYBILL_CPANGO_SHIM_H
#include <pango/pangocairo.h>
/* HarfBuzz's subsetter and OpenType metrics, for the sheet writer's embedded fonts. Here rather
   than in a module of their own: Pango's headers already declare HarfBuzz's types (hb.h), and
   one module must own them. */
#include <hb-subset.h>
#include <hb-ot.h>
#endif
