/* Number formatting and parsing that must match Redis byte for byte.
 *
 * Redis formats doubles with printf's "%.17g" and does INCRBYFLOAT in
 * `long double` (80-bit on x86-64) printed with "%.17Lf". Rust has no
 * long double and its float formatting differs, so these few functions
 * use the C library directly. They are pure: no allocation, no globals
 * other than errno. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#define MAX_LD_CHARS 5120

int basalt_fmt_g17(double d, char *out, int cap) {
    return snprintf(out, (size_t)cap, "%.17g", d);
}

/* Parses a long double as Redis's string2ld: the whole input, no leading
 * space, not NaN, no overflow/underflow. Returns 1 on success. */
static int parse_ld(const char *s, size_t len, long double *v) {
    char buf[MAX_LD_CHARS + 1];
    char *end;
    if (len == 0 || len >= MAX_LD_CHARS) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) return 0;
    errno = 0;
    *v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || *end != '\0' ||
        (errno == ERANGE && (*v == HUGE_VALL || *v == -HUGE_VALL || *v == 0)) || isnan(*v))
        return 0;
    return 1;
}

/* Parses a double as Redis's getDoubleFromObject (strtod): the whole
 * input, no leading space, not NaN, no overflow. Returns 1 on success. */
int basalt_parse_double(const char *s, size_t len, double *v) {
    char buf[MAX_LD_CHARS + 1];
    char *end;
    if (len == 0 || len >= MAX_LD_CHARS) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) return 0;
    errno = 0;
    *v = strtod(buf, &end);
    if (isspace((unsigned char)buf[0]) || *end != '\0' ||
        (errno == ERANGE && (*v == HUGE_VAL || *v == -HUGE_VAL || fpclassify(*v) == FP_ZERO)) || isnan(*v))
        return 0;
    return 1;
}

/* "%.17Lf" output of length l, as Redis's LD_STR_HUMAN: trailing zeros
 * (and a bare point) dropped, "-0" written "0". Returns the new length. */
static int trim_human(char *out, int l) {
    if (strchr(out, '.') != NULL) {
        char *p = out + l - 1;
        while (*p == '0') { p--; l--; }
        if (*p == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') { out[0] = '0'; l = 1; }
    out[l] = '\0';
    return l;
}

/* value + incr as INCRBYFLOAT. Returns the length written to `out`, or
 * -1 when `value` is not a float, -2 when `incr` is not, -3 when the sum
 * is NaN or infinite. `value` may be NULL (missing key = 0). */
int basalt_incrbyfloat(const char *value, size_t vlen, const char *incr, size_t ilen, char *out, int cap) {
    long double v = 0, i = 0;
    int l;
    if (value != NULL && !parse_ld(value, vlen, &v)) return -1;
    if (!parse_ld(incr, ilen, &i)) return -2;
    v += i;
    if (isnan(v) || isinf(v)) return -3;
    l = snprintf(out, (size_t)cap, "%.17Lf", v);
    if (l < 0 || l + 1 > cap) return -3;
    return trim_human(out, l);
}

/* Parses a score-range bound as Redis's zslParseRange: plain strtod that
 * must stop at the end of the C string (so "" is 0 and leading space is
 * allowed); NaN is refused. Returns 1 on success. */
int basalt_strtod_whole(const char *s, size_t len, double *v) {
    char buf[MAX_LD_CHARS + 1];
    char *end;
    if (len >= MAX_LD_CHARS) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    *v = strtod(buf, &end);
    if (*end != '\0' || isnan(*v)) return 0;
    return 1;
}

/* printf("%.*f", prec, d): GEO distances ("%.4f") and error texts ("%f"). */
int basalt_fmt_fixed(double d, int prec, char *out, int cap) {
    return snprintf(out, (size_t)cap, "%.*f", prec, d);
}

/* Redis's ld2string(LD_STR_HUMAN) of a double widened to long double:
 * "%.17Lf" without trailing zeros (GEOPOS, WITHCOORD). */
int basalt_fmt_human(double d, char *out, int cap) {
    long double v = d;
    int l;
    if (isinf(v)) return snprintf(out, (size_t)cap, "%s", v > 0 ? "inf" : "-inf");
    l = snprintf(out, (size_t)cap, "%.17Lf", v);
    if (l < 0 || l + 1 > cap) return 0;
    return trim_human(out, l);
}
