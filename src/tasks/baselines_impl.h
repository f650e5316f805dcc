/*
 * baselines_impl.h - private to baselines*.c: the per-thread scratch slice
 * and the one-problem solvers the batch driver (baselines.c) calls.
 *
 * Not a public header: use baselines.h.
 */
#ifndef ICL_BASELINES_IMPL_H
#define ICL_BASELINES_IMPL_H

#include <stdint.h>

/* One node of a fitted tree: an internal node sends x to `left` when
 * x[feature] <= threshold, else to `right`; a leaf has feature = -1. */
typedef struct {
    int feature, left, right;
    double threshold, value;
} bl_node;

/* A node waiting to be split: samples idx[start, end) at depth `depth`. */
typedef struct {
    int node, start, end, depth;
} bl_frame;

/* One feature value of one sample, for sorting a node's samples. */
typedef struct {
    double v, y;
    int i;
} bl_pair;

/* The scratch of one thread, sized for n_max examples of width d_max. */
typedef struct {
    int n_max, d_max;
    double *X, *y;    /* (n_max, d_max), (n_max): the current prompt's examples */
    double *q;        /* (d_max) a query / a row being rotated in */
    /* least squares (baselines_linear.c) */
    double *R;        /* (d, d) row-major upper triangular, R^T R = X^T X */
    double *z;        /* (2 d) first d: R^T z = X^T y; then z rotated during Jacobi */
    double *A;        /* (d, d) row-major, the rows of R rotated during Jacobi */
    double *w;        /* (d) */
    /* lasso */
    double *S;        /* (d, d) X^T X */
    double *s;        /* (d) X^T y */
    double yy;        /* y^T y */
    int n_seen;       /* rows added to S, s, yy */
    double *lw;       /* (d) Lasso weights, warm start across positions */
    double *M;        /* (d, d) active-set Gram matrix / its Cholesky factor */
    double *wa, *gn;  /* (d) polished weights, their gradient */
    int *act;         /* (d) active coordinates */
    signed char *pat, *pat_fail; /* (d) sign pattern now, and of the last failed polish */
    /* tree (baselines_tree.c) */
    int *sorted;      /* (d, n_max) per feature, examples 0..k-1 sorted by (x[f], index) */
    int *ord;         /* (d, n_max) per feature, samples sorted by it within each node */
    unsigned char *goes_left; /* (n_max) */
    int *tmp;         /* (n_max) */
    bl_pair *pairs;   /* (n_max) */
    bl_node *nodes;   /* (2 n_max) */
    bl_frame *stack;  /* (2 n_max) */
    int n_nodes;
    /* gd_2nn (baselines_nn.c) */
    double *par, *grad, *m, *v; /* (n_par) each: W1 (h, d), b1 (h), w2 (h), b2 (1) */
    double *H;        /* (n_max, h) hidden activations */
    double *dout;     /* (n_max) */
} bl_scratch;

/* least squares: reset to 0 rows, add one row (x, y), solve for the
 * minimum-norm w (d) of the rows so far. */
void bl_lsq_reset(bl_scratch *s, int d);
void bl_lsq_add(bl_scratch *s, int d, const double *x, double y);
void bl_lsq_solve(bl_scratch *s, int d, double *w);

/* Lasso on the rows accumulated with bl_lasso_add (n = s->n_seen);
 * w (d) is the warm start on entry and the solution on return.
 * Returns the sweeps used. */
void bl_lasso_reset(bl_scratch *s, int d);
void bl_lasso_add(bl_scratch *s, int d, const double *x, double y);
int bl_lasso_solve(bl_scratch *s, int d, double alpha, double *w);

/* Greedy tree on X (n, d), y (n); returns the number of leaves. With
 * presorted = 1 the per-feature orders of examples 0..n-1 are taken from
 * s->sorted, built by bl_tree_presort_add(k = 0, 1, ..., n-1). */
void bl_tree_presort_add(bl_scratch *s, const double *X, int k, int d);
int bl_tree_fit(bl_scratch *s, const double *X, const double *y, int n, int d, int max_depth, int presorted);
double bl_tree_eval(const bl_scratch *s, const double *x);

/* gd_2nn: init from rng_make(seed, stream), train on X (n, d), y (n); the
 * training MSE before and after training goes to loss0/loss1 (may be NULL). */
void bl_nn_fit(bl_scratch *s, const double *X, const double *y, int n, int d, uint64_t seed, uint64_t stream,
               double *loss0, double *loss1);
double bl_nn_eval(const bl_scratch *s, int d, const double *x);

#endif
