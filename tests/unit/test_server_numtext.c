/* tests/unit/test_server_numtext.c — server/numtext.c against glibc, an
 * independent implementation (exact printf, strtod): every text reads back
 * as the same double (bit for bit), has no more digits than the shortest
 * glibc finds by trying 1..17 significant digits, and where the closest
 * decimal of that length reads back it is that one (ties to even). Every
 * binary exponent (so every row of the power-of-ten table) with edge
 * mantissas, all small subnormals, 200 000 random doubles and float32
 * values as Keras logs them, a few layouts spelled out as Python's repr()
 * writes them, and integers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "numtext.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* A decimal text as its significant digits (no leading or trailing zeros)
 * and the exponent of the last one: "0.0930" → "93", -3. */
static void decimal(const char *s, char *digits, int *exp10)
{
    int n = 0, point = 0, seen_point = 0, e = 0;
    for (; *s && *s != 'e' && *s != 'E'; s++) {
        if (*s == '.') {
            seen_point = 1;
            point = n;
            continue;
        }
        if (*s < '0' || *s > '9') continue;
        if (n == 0 && *s == '0') {
            if (seen_point) point--; /* a leading zero after the point shifts it */
            continue;
        }
        digits[n++] = *s;
    }
    if (*s) e = atoi(s + 1);
    if (!seen_point) point = n;
    digits[n] = '\0';
    e += point - n;
    while (n > 0 && digits[n - 1] == '0') {
        digits[--n] = '\0';
        e++;
    }
    *exp10 = e;
}

static long fails;

/* One double: reads back bit for bit; no more significant digits than the
 * shortest %.{p-1}e that reads back; and when as many, the same decimal
 * (that one is the closest of its length, glibc rounding exactly). */
static void check_one(double v)
{
    char out[SRV_NUMTEXT_MAX + 1], ref[64], d1[40], d2[40];
    size_t n = srv_double_text(v, out);
    double back;
    int len = 0, e1, e2;

    out[n] = '\0';
    back = strtod(out, NULL);
    if (memcmp(&back, &v, sizeof v) != 0) {
        if (fails++ < 20) CHECK(0, "%.17g: '%s' reads back as %.17g", v, out, back);
        return;
    }
    if (v == 0) {
        check_pass++;
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(ref, sizeof ref, "%.*e", p - 1, v);
        if (strtod(ref, NULL) == v) {
            len = p;
            break;
        }
    }
    decimal(out, d1, &e1);
    decimal(ref, d2, &e2);
    if ((int)strlen(d1) > (int)strlen(d2) ||
        ((int)strlen(d1) == len && (strcmp(d1, d2) != 0 || e1 != e2))) {
        if (fails++ < 20)
            CHECK(0, "%.17g: '%s' (%s e%d), the shortest closest is '%s' (%s e%d)", v, out, d1, e1,
                  ref, d2, e2);
        return;
    }
    check_pass++;
}

int main(void)
{
    static const struct {
        double v;
        const char *text;
    } spelled[] = {
        {0.93, "0.93"},
        {0.1, "0.1"},
        {1e-05, "1e-05"},
        {0.0001, "0.0001"},
        {0.000123456789, "0.000123456789"},
        {2.5, "2.5"},
        {3.0, "3"},
        {-0.0, "-0"},
        {0.0, "0"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000"},
        {123456789012345680.0, "1.2345678901234568e+17"},
        {9007199254740994.0, "9007199254740994"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {-1.5e-7, "-1.5e-07"},
        {0.9300000071525574, "0.9300000071525574"},
        {735.78619384765625, "735.7861938476562"},
        {1234567890123456.8, "1234567890123456.8"},
        {100.5, "100.5"},
        {1e100, "1e+100"},
        {(double)0.1f, "0.10000000149011612"},
        {1.0 / 3.0, "0.3333333333333333"},
    };
    char out[SRV_NUMTEXT_MAX + 1];
    size_t n;

    for (size_t i = 0; i < sizeof spelled / sizeof spelled[0]; i++) {
        n = srv_double_text(spelled[i].v, out);
        out[n] = '\0';
        CHECK(strcmp(out, spelled[i].text) == 0, "%.17g: '%s', expected '%s' (Python repr)",
              spelled[i].v, out, spelled[i].text);
    }

    /* Every binary exponent: the smallest, largest and a power-of-two
     * mantissa (the uneven interval), and random ones. */
    for (uint64_t e = 0; e < 2047; e++) {
        uint64_t ms[6] = {0,
                          1,
                          0xfffffffffffffu,
                          0x8000000000000u,
                          next() & 0xfffffffffffffu,
                          next() & 0xfffffffffffffu};
        for (int i = 0; i < 6; i++) {
            check_one(from_bits(e << 52 | ms[i]));
            check_one(-from_bits(e << 52 | ms[i]));
        }
    }
    for (uint64_t c = 1; c < 20000; c++) check_one(from_bits(c));
    for (int i = 0; i < 200000; i++) {
        uint64_t b = next();
        if (((b >> 52) & 0x7ff) == 0x7ff) continue;
        check_one(from_bits(b));
        float f;
        uint32_t u = (uint32_t)next();
        memcpy(&f, &u, sizeof f);
        if (isfinite(f)) check_one((double)f);
        check_one((double)(float)(1.0 / (1.0 + i * 0.001)));
        check_one((double)(next() % 1000000) / 1e6);
    }
    CHECK(fails == 0, "%ld doubles failed (first 20 shown)", fails);

    /* Integers. */
    static const int64_t ints[] = {0,  7,          10,        99,        100,     12345,
                                   -1, -987654321, INT64_MAX, INT64_MIN, 1000000, 999999};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        char ref[32];
        n = srv_i64_text(ints[i], out);
        out[n] = '\0';
        snprintf(ref, sizeof ref, "%lld", (long long)ints[i]);
        CHECK(strcmp(out, ref) == 0, "%s: '%s'", ref, out);
    }
    return check_done();
}
