/*
 * theme.c - the colour tables of theme.h: three themes (default, mono, cb),
 * each a 256-colour and an 8-colour style per role, and the heatmap ramps.
 *
 * The ramps were chosen offline: the matplotlib stops of viridis and of
 * ColorBrewer's RdBu (reversed) were interpolated, and a dynamic program
 * picked, level by level, the xterm cube colour (indices 16-231; the system
 * colours 0-15 differ between terminals) nearest in CIE Lab subject to CIE L*
 * strictly rising (diverging: rising to the white centre, then falling), so
 * brightness alone orders the levels and the ramp still reads in grey.
 * theme_xterm_lightness() lets the tests check that property.
 *
 * Everything here is constant data; there is no global state.
 */
#include "tui/theme.h"

#include <math.h>
#include <string.h>

#define B TUI_ATTR_BOLD
#define D TUI_ATTR_DIM
#define R TUI_ATTR_REVERSE

struct tui_theme {
    const char *name;
    int colors; /* 0 for mono: never emits colours */
    tui_style c256[TUI_ROLE_COUNT];
    tui_style c8[TUI_ROLE_COUNT];
};

/* Role order: DEFAULT FRAME TITLE TEXT DIM LOSS_TRAIN LOSS_EVAL MODEL_CURVE
 * BASELINE_1..4 BAND CURSOR STATUS STATUS_KEY WARN ERROR PROMPT FOCUS. */
static const tui_theme themes[] = {
    {"default", 1,
     {{-1, -1, 0}, {244, -1, 0}, {75, -1, B}, {-1, -1, 0}, {245, -1, 0},
      {39, -1, 0}, {208, -1, 0}, {45, -1, B},
      {203, -1, 0}, {114, -1, 0}, {221, -1, 0}, {177, -1, 0},
      {-1, 237, 0}, {226, -1, B}, {252, 236, 0}, {16, 74, B},
      {214, -1, B}, {196, -1, B}, {76, -1, B}, {220, -1, B}},
     {{-1, -1, 0}, {7, -1, 0}, {6, -1, B}, {-1, -1, 0}, {-1, -1, D},
      {6, -1, 0}, {3, -1, 0}, {6, -1, B},
      {1, -1, 0}, {2, -1, 0}, {3, -1, 0}, {5, -1, 0},
      {-1, -1, 0}, {3, -1, B}, {7, 4, 0}, {0, 6, B},
      {3, -1, B}, {1, -1, B}, {2, -1, B}, {3, -1, B}}},
    /* mono: attributes only (theme_style never reads its 8-colour table;
     * every terminal without colours uses this 256 table) */
    {"mono", 0,
     {{-1, -1, 0}, {-1, -1, 0}, {-1, -1, B}, {-1, -1, 0}, {-1, -1, D},
      {-1, -1, B}, {-1, -1, 0}, {-1, -1, B},
      {-1, -1, 0}, {-1, -1, 0}, {-1, -1, D}, {-1, -1, D},
      {-1, -1, 0}, {-1, -1, B}, {-1, -1, R}, {-1, -1, B},
      {-1, -1, B}, {-1, -1, B | R}, {-1, -1, B}, {-1, -1, B}},
     {{0, 0, 0}}},
    /* cb: Okabe-Ito, nearest xterm colours: sky blue 74, orange 214, bluish
     * green 36, yellow 227, reddish purple 175, vermillion 166. Curves that
     * share a chart never rely on red against green. */
    {"cb", 1,
     {{-1, -1, 0}, {244, -1, 0}, {74, -1, B}, {-1, -1, 0}, {245, -1, 0},
      {74, -1, 0}, {214, -1, 0}, {74, -1, B},
      {214, -1, 0}, {36, -1, 0}, {227, -1, 0}, {175, -1, 0},
      {-1, 237, 0}, {227, -1, B}, {252, 236, 0}, {16, 74, B},
      {214, -1, B}, {166, -1, B}, {36, -1, B}, {214, -1, B}},
     {{-1, -1, 0}, {7, -1, 0}, {6, -1, B}, {-1, -1, 0}, {-1, -1, D},
      {6, -1, 0}, {3, -1, 0}, {6, -1, B},
      {3, -1, 0}, {5, -1, 0}, {4, -1, B}, {7, -1, 0},
      {-1, -1, 0}, {3, -1, B}, {7, 4, 0}, {0, 6, B},
      {3, -1, B}, {1, -1, B}, {6, -1, B}, {3, -1, B}}},
};
#define N_THEMES ((int)(sizeof themes / sizeof themes[0]))

#undef B
#undef D
#undef R

static const char *const theme_name_list[] = {"default", "mono", "cb"};

static const char *const role_names[TUI_ROLE_COUNT] = {
    "default",    "frame",      "title",      "text",       "dim",    "loss_train", "loss_eval",
    "model_curve", "baseline_1", "baseline_2", "baseline_3", "baseline_4", "band", "cursor",
    "status",     "status_key", "warn",       "error",      "prompt", "focus"};

const tui_theme *theme_find(const char *name) {
    for (int i = 0; name && i < N_THEMES; i++)
        if (!strcmp(themes[i].name, name)) return &themes[i];
    icl_fail(ICL_ERR_ARG, "theme: unknown theme '%s' (themes: default, mono, cb)", name ? name : "(null)");
    return NULL;
}

const char *theme_name(const tui_theme *th) { return th ? th->name : "default"; }

const char *const *theme_names(int *n) {
    if (n) *n = N_THEMES;
    return theme_name_list;
}

int theme_has_colors(const tui_theme *th) { return th ? th->colors : 1; }

tui_style theme_style(const tui_theme *th, tui_role role, int colors) {
    if (!th) th = &themes[0];
    if ((int)role < 0 || role >= TUI_ROLE_COUNT) role = TUI_ROLE_DEFAULT;
    /* No colours (a monochrome terminal or the mono theme): the mono table,
     * whose attributes alone keep the roles apart. */
    if (colors <= 0 || !th->colors) return themes[1].c256[role];
    return colors >= 256 ? th->c256[role] : th->c8[role];
}

const char *theme_role_name(tui_role role) {
    return ((int)role >= 0 && role < TUI_ROLE_COUNT) ? role_names[role] : "?";
}

/* ---- ramps ---------------------------------------------------------------- */

/* viridis: #440154 .. #fde725; L* 21 -> 87. */
static const unsigned char viridis256[] = {53, 54, 25, 60, 31, 66, 37, 72, 78, 113, 148, 184, 220};
/* blue-white-red (RdBu reversed), white at the centre level. */
static const unsigned char diverging256[] = {25, 31, 67, 74, 152, 195, 231, 224, 217, 210, 167, 124, 88};
/* The 16-colour fallbacks: black, dark grey, light grey, white; blue to red
 * through white. */
static const unsigned char grey16[] = {0, 8, 7, 15};
static const unsigned char diverging16[] = {4, 12, 15, 9, 1};

static const unsigned char *ramp_table(tui_ramp r, int colors, int *n) {
    if (colors < 16) {
        *n = 0;
        return NULL;
    }
    if (colors < 256) {
        if (r == TUI_RAMP_DIVERGING) {
            *n = (int)sizeof diverging16;
            return diverging16;
        }
        *n = (int)sizeof grey16;
        return grey16;
    }
    switch (r) {
    case TUI_RAMP_DIVERGING: *n = (int)sizeof diverging256; return diverging256;
    case TUI_RAMP_GREY: *n = 24; return NULL; /* 232..255, computed */
    case TUI_RAMP_VIRIDIS:
    default: *n = (int)sizeof viridis256; return viridis256;
    }
}

int theme_ramp_levels(tui_ramp r, int colors) {
    int n;
    ramp_table(r, colors, &n);
    return n;
}

int theme_ramp_color(tui_ramp r, int colors, int level) {
    int n;
    const unsigned char *t = ramp_table(r, colors, &n);
    if (n == 0) return -1;
    if (level < 0) level = 0;
    if (level >= n) level = n - 1;
    return t ? t[level] : 232 + level;
}

int theme_ramp_level(tui_ramp r, int colors, double v) {
    int n = theme_ramp_levels(r, colors);
    if (n == 0) return 0;
    if (!(v > 0)) return 0; /* also NaN */
    int l = (int)(v * n);
    return l >= n ? n - 1 : l;
}

void theme_xterm_rgb(int idx, unsigned char rgb[3]) {
    static const unsigned char sys[16][3] = {
        {0, 0, 0},     {205, 0, 0},   {0, 205, 0},   {205, 205, 0},   {0, 0, 238},   {205, 0, 205},
        {0, 205, 205}, {229, 229, 229}, {127, 127, 127}, {255, 0, 0}, {0, 255, 0},   {255, 255, 0},
        {92, 92, 255}, {255, 0, 255}, {0, 255, 255}, {255, 255, 255}};
    if (idx < 0) idx = 0;
    if (idx > 255) idx = 255;
    if (idx < 16) {
        memcpy(rgb, sys[idx], 3);
    } else if (idx >= 232) {
        rgb[0] = rgb[1] = rgb[2] = (unsigned char)(8 + 10 * (idx - 232));
    } else {
        static const unsigned char lv[6] = {0, 95, 135, 175, 215, 255};
        int i = idx - 16;
        rgb[0] = lv[i / 36];
        rgb[1] = lv[(i / 6) % 6];
        rgb[2] = lv[i % 6];
    }
}

static double srgb_to_linear(unsigned char c) {
    double v = c / 255.0;
    return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}

double theme_xterm_lightness(int idx) {
    unsigned char rgb[3];
    theme_xterm_rgb(idx, rgb);
    /* relative luminance (Rec. 709 primaries), then CIE L* */
    double y = 0.2126 * srgb_to_linear(rgb[0]) + 0.7152 * srgb_to_linear(rgb[1]) + 0.0722 * srgb_to_linear(rgb[2]);
    double f = y > 0.008856 ? cbrt(y) : 7.787 * y + 16.0 / 116.0;
    return 116.0 * f - 16.0;
}
