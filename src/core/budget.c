/*
 * budget.c - the process-wide memory budget and byte sizes (see budget.h).
 *
 * What it is not: an allocator or an accountant. Nothing here counts what
 * is allocated; the callers estimate what they are about to allocate and
 * ask icl_budget_check first.
 */
#include "core/budget.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define GIB ((size_t)1 << 30)

/* The value given to icl_budget_set; 0 = not set (env or default). */
static size_t budget_set_value;

size_t icl_phys_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    if ((size_t)pages > SIZE_MAX / (size_t)page) return SIZE_MAX;
    return (size_t)pages * (size_t)page;
}

size_t icl_budget_default(void) {
    size_t phys = icl_phys_bytes();
    return phys ? phys / 2 : 4 * GIB;
}

size_t icl_budget_get(void) {
    if (budget_set_value) return budget_set_value;
    /* read every time: cheap, and a test (or the user) may change it */
    const char *env = getenv("ICLPLAY_BUDGET");
    size_t v;
    if (env && *env && icl_parse_bytes(env, &v) == ICL_OK && v > 0) return v;
    return icl_budget_default();
}

void icl_budget_set(size_t bytes) { budget_set_value = bytes; }

/* bytes in the largest binary unit that keeps the number >= 1, with
 * `decimals` digits after the point. */
static int format_bytes(char *buf, size_t n, size_t bytes, int decimals) {
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes == SIZE_MAX) return snprintf(buf, n, "unlimited");
    if (bytes < 1024) return snprintf(buf, n, "%zu B", bytes);
    double v = (double)bytes / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    return snprintf(buf, n, "%.*f %s", decimals, v, units[u]);
}

int icl_format_bytes(char *buf, size_t n, size_t bytes) { return format_bytes(buf, n, bytes, 1); }

icl_status icl_budget_check(size_t need, const char *who, const char *what) {
    size_t budget = icl_budget_get();
    if (need <= budget) return ICL_OK;
    char nb[32], bb[32];
    icl_format_bytes(nb, sizeof nb, need);
    icl_format_bytes(bb, sizeof bb, budget);
    if (!strcmp(nb, bb)) { /* "needs 8.0 GiB, over the budget of 8.0 GiB": more digits */
        format_bytes(nb, sizeof nb, need, 3);
        format_bytes(bb, sizeof bb, budget, 3);
    }
    return icl_fail(ICL_ERR_NOMEM,
                    "%s needs about %s for %s, over the budget of %s (icl.memory_budget or ICLPLAY_BUDGET)", who, nb,
                    what, bb);
}

icl_status icl_parse_bytes(const char *text, size_t *bytes) {
    *bytes = 0;
    if (!text) return icl_fail(ICL_ERR_ARG, "size: none given (expected e.g. 512M or 2G)");
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    static const char *const off[] = {"off", "none", "unlimited"};
    for (size_t i = 0; i < sizeof off / sizeof *off; i++) {
        size_t l = strlen(off[i]);
        if (!strncasecmp(p, off[i], l)) {
            const char *q = p + l;
            while (isspace((unsigned char)*q)) q++;
            if (!*q) {
                *bytes = SIZE_MAX;
                return ICL_OK;
            }
        }
    }
    /* digits and at most one point only: strtod would also take "inf",
     * "nan", hex floats and exponents */
    const char *q = p;
    int digits = 0, points = 0;
    while (isdigit((unsigned char)*q) || *q == '.') {
        if (*q == '.') points++;
        else digits++;
        q++;
    }
    if (!digits || points > 1)
        return icl_fail(ICL_ERR_ARG, "size '%s' is not a number of bytes (expected e.g. 512M, 1.5G or 1048576)", text);
    double v = strtod(p, NULL);
    while (isspace((unsigned char)*q)) q++;
    double mult = 1;
    if (*q) {
        switch (toupper((unsigned char)*q)) {
        case 'B': mult = 1; break;
        case 'K': mult = 1024.0; break;
        case 'M': mult = 1024.0 * 1024; break;
        case 'G': mult = 1024.0 * 1024 * 1024; break;
        case 'T': mult = 1024.0 * 1024 * 1024 * 1024; break;
        default:
            return icl_fail(ICL_ERR_ARG, "size '%s' has an unknown unit (use B, K, M, G or T, e.g. 512M)", text);
        }
        int unit_b = toupper((unsigned char)*q) == 'B';
        q++;
        /* "K", "KB", "KiB" (and lower case) */
        if (!unit_b && (*q == 'i' || *q == 'I') && (q[1] == 'B' || q[1] == 'b')) q += 2;
        else if (!unit_b && (*q == 'B' || *q == 'b')) q++;
        while (isspace((unsigned char)*q)) q++;
        if (*q) return icl_fail(ICL_ERR_ARG, "size '%s' has trailing text (expected e.g. 512M or 2G)", text);
    }
    double b = floor(v * mult);
    if (!(b >= 0) || b >= 9.0e18)
        return icl_fail(ICL_ERR_ARG, "size '%s' is out of range", text);
    *bytes = (size_t)b;
    return ICL_OK;
}
