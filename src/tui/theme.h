/*
 * theme.h - semantic colour roles, the themes that give them colours, and
 * the perceptual colour ramps of the heatmaps.
 *
 * Nothing in the TUI names a colour: cells carry a role (TUI_ROLE_LOSS_TRAIN,
 * TUI_ROLE_WARN, ...), and the screen manager turns each role into a curses
 * colour pair and attributes once, from theme_style() (htop's ColorElements
 * and CRT_colorSchemes, STYLE.md rule 19). Three themes:
 *   default  for dark terminals
 *   mono     no colours at all: bold, dim and reverse only
 *   cb       colour-blind safe (the Okabe-Ito palette)
 * Every role has a 256-colour style and an 8-colour fallback; theme_style()
 * picks by the number of colours the terminal has (0 = monochrome).
 *
 * Heatmaps use raw xterm-256 indices from a ramp instead of roles: viridis
 * (sequential) and a blue-white-red diverging ramp, both quantised to the
 * xterm colour cube so that CIE L* rises monotonically along the ramp
 * (diverging: rises to white, then falls), and a grey ramp. Ramps have few
 * levels (at most 24) so a screen needs few colour pairs for all heatmaps.
 * 16-colour terminals get a 4-grey ramp (a 5-colour one for diverging);
 * below 16 colours a ramp has no levels and heatmaps draw shade glyphs.
 *
 * Not here: curses (the screen manager calls init_pair from these styles),
 * drawing (canvas.h, plot.h).
 */
#ifndef ICL_TUI_THEME_H
#define ICL_TUI_THEME_H

#include "core/status.h"

/* Colour roles. TUI_ROLE_DEFAULT is the terminal's own colours. */
typedef enum {
    TUI_ROLE_DEFAULT = 0,
    TUI_ROLE_FRAME,       /* panel borders */
    TUI_ROLE_TITLE,       /* panel titles */
    TUI_ROLE_TEXT,        /* ordinary text */
    TUI_ROLE_DIM,         /* axes, tick labels, secondary text */
    TUI_ROLE_LOSS_TRAIN,  /* the training-loss curve */
    TUI_ROLE_LOSS_EVAL,   /* the evaluation curve */
    TUI_ROLE_MODEL_CURVE, /* the model's ICL error curve */
    TUI_ROLE_BASELINE_1,  /* baselines, in the order of the eval report */
    TUI_ROLE_BASELINE_2,
    TUI_ROLE_BASELINE_3,
    TUI_ROLE_BASELINE_4,
    TUI_ROLE_BAND,        /* confidence band (used as a background) */
    TUI_ROLE_CURSOR,      /* the plot cursor and its readout */
    TUI_ROLE_STATUS,      /* the status line */
    TUI_ROLE_STATUS_KEY,  /* key names in the status line */
    TUI_ROLE_WARN,
    TUI_ROLE_ERROR,
    TUI_ROLE_PROMPT,
    TUI_ROLE_FOCUS,       /* the frame and title of the focused panel */
    TUI_ROLE_COUNT
} tui_role;

/* Cell attributes (bit flags). */
#define TUI_ATTR_BOLD 1u
#define TUI_ATTR_DIM 2u
#define TUI_ATTR_REVERSE 4u
#define TUI_ATTR_UNDERLINE 8u

/* What one role looks like: xterm colour indices (-1 = the terminal's
 * default colour) and TUI_ATTR_* flags. */
typedef struct {
    short fg, bg;
    unsigned attr;
} tui_style;

typedef struct tui_theme tui_theme; /* opaque; the themes are static tables */

/* The theme named `name` ("default", "mono", "cb"); NULL (with an
 * ICL_ERR_ARG message listing the names) if unknown. */
const tui_theme *theme_find(const char *name);
const char *theme_name(const tui_theme *th);
/* The theme names, for help and completion. [out] *n. */
const char *const *theme_names(int *n);
/* The style of `role` on a terminal with `colors` colours: >= 256 uses the
 * 256-colour table, 8..255 the 8-colour fallback (indices 0-7 only), 0 (or
 * the mono theme) no colours at all, attributes only. */
tui_style theme_style(const tui_theme *th, tui_role role, int colors);
/* Name of a role ("loss_train", ...), for configuration and debugging. */
const char *theme_role_name(tui_role role);
/* Whether a theme draws with colours at all (0 for mono): the screen sets
 * canvas.colors to 0 for it, so heatmaps use glyphs. */
int theme_has_colors(const tui_theme *th);

/* ---- heatmap ramps -------------------------------------------------------- */

typedef enum { TUI_RAMP_VIRIDIS = 0, TUI_RAMP_DIVERGING, TUI_RAMP_GREY, TUI_RAMP_COUNT } tui_ramp;

#define TUI_RAMP_MAX_LEVELS 24

/* Number of colour levels of ramp r on a terminal of `colors` colours, or 0
 * if it has fewer than 16 (draw glyphs then: canvas.h's shade ramp). */
int theme_ramp_levels(tui_ramp r, int colors);
/* xterm index of level `level` (clamped to [0, levels)); -1 if no levels. */
int theme_ramp_color(tui_ramp r, int colors, int level);
/* The level for v in [0, 1] (clamped; NaN gives level 0): floor(v * levels). */
int theme_ramp_level(tui_ramp r, int colors, double v);
/* The sRGB colour of xterm index idx (0-255) as the xterm defaults define
 * it: 16 system colours, the 6x6x6 cube, 24 greys. [out] rgb[3]. */
void theme_xterm_rgb(int idx, unsigned char rgb[3]);
/* CIE L* (0 black .. 100 white) of xterm index idx, to check ramps. */
double theme_xterm_lightness(int idx);

#endif
