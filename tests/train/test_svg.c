/*
 * test_svg.c - the SVG line-chart writer: the file is well-formed XML
 * (balanced tags, valid entities, quoted attributes), every series and
 * reference line is named in it with its text escaped, every coordinate is a
 * finite number, gaps break lines, log axes skip non-positive values, and a
 * failed write leaves nothing behind and names the path.
 *
 * The checker below is a deliberately small XML reader, not a validator: it
 * knows elements, attributes, text, comments and the XML declaration, which
 * is everything svg.c writes.
 */
#include "train/svg.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

static char tmpdir[256];

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

static int count_of(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* '&' must start one of the five predefined entities. */
static int entity_ok(const char *p) {
    static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int i = 0; i < 5; i++)
        if (!strncmp(p, ents[i], strlen(ents[i]))) return 1;
    return 0;
}

/* Numeric attributes must hold finite numbers only (points: pairs). */
static int numbers_ok(const char *name, size_t nlen, const char *val, size_t vlen, char *why, size_t wn) {
    static const char *const numeric[] = {"x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height", "points"};
    int is_num = 0;
    for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++)
        if (strlen(numeric[i]) == nlen && !strncmp(name, numeric[i], nlen)) is_num = 1;
    if (!is_num) return 1;
    char buf[1 << 16];
    if (vlen >= sizeof buf) vlen = sizeof buf - 1;
    memcpy(buf, val, vlen);
    buf[vlen] = '\0';
    int count = 0;
    for (char *p = buf; *p;) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v) || strpbrk(p, "nNiI") == p) {
            snprintf(why, wn, "attribute %.*s has a non-number near '%.20s'", (int)nlen, name, p);
            return 0;
        }
        count++;
        p = end;
    }
    if (count == 0) {
        snprintf(why, wn, "attribute %.*s is empty", (int)nlen, name);
        return 0;
    }
    return 1;
}

/* 1 if s is well-formed as far as svg.c's output goes; else 0 and why. */
static int xml_ok(const char *s, char *why, size_t wn) {
    const char *stack[64];
    size_t stack_len[64];
    int depth = 0, roots = 0;
    const char *p = s;
    if (strncmp(p, "<?xml", 5)) {
        snprintf(why, wn, "no XML declaration");
        return 0;
    }
    p = strstr(p, "?>");
    if (!p) {
        snprintf(why, wn, "unterminated declaration");
        return 0;
    }
    p += 2;
    while (*p) {
        if (*p != '<') {
            if (*p == '&' && !entity_ok(p)) {
                snprintf(why, wn, "bad entity in text near '%.20s'", p);
                return 0;
            }
            if (depth == 0 && *p != '\n' && *p != ' ') {
                snprintf(why, wn, "text outside the root near '%.20s'", p);
                return 0;
            }
            p++;
            continue;
        }
        if (!strncmp(p, "<!--", 4)) {
            const char *e = strstr(p, "-->");
            if (!e) {
                snprintf(why, wn, "unterminated comment");
                return 0;
            }
            p = e + 3;
            continue;
        }
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t nlen = strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:");
        if (nlen == 0) {
            snprintf(why, wn, "tag without a name near '%.20s'", p);
            return 0;
        }
        const char *q = name + nlen;
        if (closing) {
            if (*q != '>') {
                snprintf(why, wn, "junk in closing tag near '%.20s'", p);
                return 0;
            }
            if (depth == 0 || stack_len[depth - 1] != nlen || strncmp(stack[depth - 1], name, nlen)) {
                snprintf(why, wn, "closing </%.*s> does not match the open element", (int)nlen, name);
                return 0;
            }
            depth--;
            p = q + 1;
            continue;
        }
        /* attributes: name="value" */
        for (;;) {
            while (*q == ' ' || *q == '\n') q++;
            if (*q == '>' || (q[0] == '/' && q[1] == '>')) break;
            const char *an = q;
            size_t alen = strspn(an, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:");
            if (alen == 0 || an[alen] != '=' || an[alen + 1] != '"') {
                snprintf(why, wn, "bad attribute in <%.*s> near '%.20s'", (int)nlen, name, an);
                return 0;
            }
            const char *v = an + alen + 2, *ve = strchr(v, '"');
            if (!ve) {
                snprintf(why, wn, "unterminated attribute value");
                return 0;
            }
            for (const char *c = v; c < ve; c++) {
                if (*c == '<' || (*c == '&' && !entity_ok(c))) {
                    snprintf(why, wn, "raw < or bad & in attribute %.*s", (int)alen, an);
                    return 0;
                }
            }
            if (!numbers_ok(an, alen, v, (size_t)(ve - v), why, wn)) return 0;
            q = ve + 1;
        }
        if (*q == '/') {
            if (depth == 0) roots++;
            p = q + 2;
        } else {
            if (depth == 0) roots++;
            if (depth == 64) {
                snprintf(why, wn, "nesting too deep");
                return 0;
            }
            stack[depth] = name;
            stack_len[depth] = nlen;
            depth++;
            p = q + 1;
        }
    }
    if (depth != 0) {
        snprintf(why, wn, "%d element(s) left open, innermost <%.*s>", depth, (int)stack_len[depth - 1],
                 stack[depth - 1]);
        return 0;
    }
    if (roots != 1) {
        snprintf(why, wn, "%d root elements", roots);
        return 0;
    }
    return 1;
}

static void make_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

/* Entries of a directory other than . and .. */
static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_well_formed_chart(void) {
    enum { N = 30 };
    double x[N], a[N], lo[N], hi[N], b[N], g[N];
    for (int i = 0; i < N; i++) {
        x[i] = i;
        a[i] = 1.0 / (1.0 + i);
        lo[i] = a[i] * 0.8;
        hi[i] = a[i] * 1.25;
        b[i] = 0.5 + 0.01 * i;
        g[i] = (i == 10 || i == 20) ? NAN : 0.3; /* two gaps: three pieces */
    }
    svg_chart c;
    svg_chart_init(&c, "Linear <regression> & friends", "in-context examples", "error \"normalised\"");
    CHECK(svg_chart_add_series(&c, "model", x, a, lo, hi, N) == ICL_OK, "%s", icl_error());
    CHECK(svg_chart_add_series(&c, "knn & <co>", x, b, NULL, NULL, N) == ICL_OK, "%s", icl_error());
    CHECK(svg_chart_add_series(&c, "gappy's", x, g, NULL, NULL, N) == ICL_OK, "%s", icl_error());
    CHECK(svg_chart_add_hline(&c, "zero predictor", 1.0) == ICL_OK, "%s", icl_error());
    CHECK(svg_chart_add_series(&c, "half", x, a, lo, NULL, N) == ICL_ERR_ARG, "lo without hi must be refused");
    char path[512];
    make_path(path, sizeof path, "chart.svg");
    CHECK(svg_chart_write(&c, path) == ICL_OK, "%s", icl_error());
    svg_chart_free(&c);
    char *s = slurp(path);
    CHECK(s != NULL, "cannot read back %s", path);
    if (!s) return;
    char why[256] = "";
    int ok = xml_ok(s, why, sizeof why);
    printf("    %zu bytes, well-formed: %s %s\n", strlen(s), ok ? "yes" : "NO", why);
    CHECK(ok, "not well-formed: %s", why);
    CHECK(strstr(s, "version=\"1.1\"") && strstr(s, "xmlns=\"http://www.w3.org/2000/svg\""), "SVG 1.1 root");
    CHECK(strstr(s, ">model<") != NULL, "series name 'model' missing");
    CHECK(strstr(s, ">knn &amp; &lt;co&gt;<") != NULL, "escaped series name missing");
    CHECK(strstr(s, ">gappy&apos;s<") != NULL, "escaped apostrophe missing");
    CHECK(strstr(s, ">zero predictor<") != NULL, "reference line not in the legend");
    CHECK(strstr(s, "Linear &lt;regression&gt; &amp; friends") != NULL, "escaped title missing");
    CHECK(strstr(s, "error &quot;normalised&quot;") != NULL, "escaped y label missing");
    CHECK(strstr(s, ">in-context examples<") != NULL, "x label missing");
    CHECK(count_of(s, "<polygon") == 1, "one band expected, found %d", count_of(s, "<polygon"));
    /* model, knn, and three pieces of the gappy series */
    CHECK(count_of(s, "<polyline") == 5, "5 polylines expected (gaps split a line), found %d",
          count_of(s, "<polyline"));
    CHECK(count_of(s, "stroke-dasharray=\"6,4\"") == 2, "a dashed reference line and its legend sample");
    free(s);
    remove(path);
}

static void test_log_scale_and_range(void) {
    enum { N = 12 };
    double x[N], y[N];
    for (int i = 0; i < N; i++) {
        x[i] = 100.0 * i;
        y[i] = i < 2 ? (i == 0 ? 0.0 : -1.0) : pow(10.0, -0.3 * i); /* 0 and -1 cannot be drawn on a log axis */
    }
    svg_chart c;
    svg_chart_init(&c, "loss", "training steps", "loss");
    svg_chart_set_scale(&c, SVG_SCALE_LINEAR, SVG_SCALE_LOG);
    CHECK(svg_chart_add_series(&c, "loss", x, y, NULL, NULL, N) == ICL_OK, "%s", icl_error());
    char path[512];
    make_path(path, sizeof path, "log.svg");
    CHECK(svg_chart_write(&c, path) == ICL_OK, "%s", icl_error());
    char *s = slurp(path);
    char why[256] = "";
    CHECK(s && xml_ok(s, why, sizeof why), "log chart not well-formed: %s", why);
    /* y from 10^-3.3 to 10^-0.6: decades 1e-4 .. 1 labelled. */
    CHECK(s && strstr(s, ">0.001<") && strstr(s, ">0.01<"), "log tick labels missing");
    CHECK(s && count_of(s, "<polyline") == 1, "one line (the two unusable points only shorten it)");
    free(s);

    /* A fixed range with data far outside it: clipped, still finite. */
    svg_chart_set_scale(&c, SVG_SCALE_LINEAR, SVG_SCALE_LINEAR);
    svg_chart_set_y_range(&c, 0.0, 1e-6);
    CHECK(svg_chart_write(&c, path) == ICL_OK, "%s", icl_error());
    s = slurp(path);
    CHECK(s && xml_ok(s, why, sizeof why), "clipped chart not well-formed: %s", why);
    CHECK(s && strstr(s, "clip-path=\"url(#plot-area)\""), "plot area clipping");
    free(s);
    svg_chart_free(&c);

    /* An empty chart and an all-NaN series are still valid files. */
    double nan_y[3] = {NAN, NAN, NAN}, x3[3] = {0, 1, 2};
    svg_chart_init(&c, NULL, NULL, NULL);
    CHECK(svg_chart_write(&c, path) == ICL_OK, "%s", icl_error());
    s = slurp(path);
    CHECK(s && xml_ok(s, why, sizeof why), "empty chart: %s", why);
    free(s);
    svg_chart_add_series(&c, "nothing", x3, nan_y, nan_y, nan_y, 3);
    CHECK(svg_chart_write(&c, path) == ICL_OK, "%s", icl_error());
    s = slurp(path);
    CHECK(s && xml_ok(s, why, sizeof why), "all-NaN chart: %s", why);
    CHECK(s && count_of(s, "<polyline") == 0 && count_of(s, "<polygon") == 0, "nothing drawable drawn");
    free(s);
    svg_chart_free(&c);
    remove(path);
}

static void test_many_series(void) {
    double x[2] = {0, 1}, y[2] = {0, 1};
    svg_chart c;
    svg_chart_init(&c, "many", "x", "y");
    char name[32];
    for (int i = 0; i < SVG_MAX_SERIES; i++) {
        snprintf(name, sizeof name, "s%02d", i);
        y[1] = i;
        CHECK(svg_chart_add_series(&c, name, x, y, NULL, NULL, 2) == ICL_OK, "%s", icl_error());
    }
    CHECK(svg_chart_add_series(&c, "one too many", x, y, NULL, NULL, 2) == ICL_ERR_ARG, "capacity");
    char path[512];
    make_path(path, sizeof path, "many.svg");
    CHECK(svg_chart_write(&c, path) == ICL_OK, "%s", icl_error());
    svg_chart_free(&c);
    char *s = slurp(path), why[256] = "";
    CHECK(s && xml_ok(s, why, sizeof why), "%s", why);
    for (int i = 0; s && i < SVG_MAX_SERIES; i++) {
        snprintf(name, sizeof name, ">s%02d<", i);
        CHECK(strstr(s, name) != NULL, "legend entry %s missing", name);
    }
    /* Past the 8 palette colours, lines get dashes. */
    CHECK(s && count_of(s, "stroke-dasharray=\"7,3\"") >= 8, "second palette round dashed");
    free(s);
    remove(path);
}

static void test_failed_write(void) {
    double x[2] = {0, 1}, y[2] = {1, 2};
    svg_chart c;
    svg_chart_init(&c, "t", "x", "y");
    svg_chart_add_series(&c, "a", x, y, NULL, NULL, 2);
    /* A missing folder: nothing can be created, the message names the path. */
    char path[512];
    make_path(path, sizeof path, "no/such/folder/chart.svg");
    int before = dir_entries(tmpdir);
    icl_status st = svg_chart_write(&c, path);
    printf("    missing folder: %s\n", icl_error());
    CHECK(st == ICL_ERR_IO, "status %d, want ICL_ERR_IO", (int)st);
    CHECK(strstr(icl_error(), path) != NULL, "message does not name the path: %s", icl_error());
    CHECK(dir_entries(tmpdir) == before, "something was left in %s", tmpdir);
    /* The rename fails (the target is a non-empty directory): the temporary
     * file must be removed again and the target left alone. */
    char sub[512], inner[600];
    make_path(sub, sizeof sub, "taken");
    mkdir(sub, 0700);
    snprintf(inner, sizeof inner, "%s/keep", sub);
    FILE *f = fopen(inner, "w");
    if (f) fclose(f);
    before = dir_entries(tmpdir);
    st = svg_chart_write(&c, sub);
    printf("    rename over a directory: %s\n", icl_error());
    CHECK(st == ICL_ERR_IO, "status %d, want ICL_ERR_IO", (int)st);
    CHECK(strstr(icl_error(), sub) != NULL, "message does not name the path: %s", icl_error());
    CHECK(dir_entries(tmpdir) == before, "temporary file left behind in %s", tmpdir);
    remove(inner);
    rmdir(sub);
    svg_chart_free(&c);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/icl_test_svg_%ld", (long)getpid());
    mkdir(tmpdir, 0700);
    TEST_RUN(test_well_formed_chart);
    TEST_RUN(test_log_scale_and_range);
    TEST_RUN(test_many_series);
    TEST_RUN(test_failed_write);
    rmdir(tmpdir);
    return test_finish();
}
