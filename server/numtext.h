/* server/numtext.h — private to server/: numbers as text without printf
 * (numtext.c). Neither writes a NUL; both may scribble up to SRV_NUMTEXT_MAX
 * bytes at out, past the length they return. */
#ifndef STRATA_NUMTEXT_H
#define STRATA_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Room either needs at out: the longest text, "-2.2250738585072014e-308",
 * is 24 bytes, but both copy digits in fixed blocks past the end. */
#define SRV_NUMTEXT_MAX 48

/* The shortest decimal that reads back (strtod) as v, the closest to v of
 * those; Python repr()'s digits and layout, except that integral values
 * below 1e16 have no ".0". v must be finite (NaN/Inf give "nan"/"inf").
 * Returns the length written to out (room for SRV_NUMTEXT_MAX). */
size_t srv_double_text(double v, char *out);
/* v in decimal; the length written to out (room for SRV_NUMTEXT_MAX). */
size_t srv_i64_text(int64_t v, char *out);

#endif
