/*
 * loss.c - the masked training losses (MSE, BCE on logits, cross-entropy)
 * and their gradients with respect to the predictions.
 *
 * Rows are prediction slots, N = B*T. Each loss is the mask-weighted mean of
 * a per-row loss l_i:   L = sum_i m_i l_i / sum_i m_i,
 * so dL/dpred_i = (m_i / sum m) dl_i/dpred_i. Rows with m_i == 0 are skipped
 * entirely: their pred/target are never read (they may hold NaN or, for CE, a
 * target of -1) and they get no gradient. If sum m <= 0 the loss is 0 and
 * backward adds nothing. mask may be NULL, meaning all ones.
 *
 * Precision and determinism: every sum is taken in double. The forward sum is
 * split into LOSS_CHUNKS fixed row ranges (fixed by N, not by the thread
 * count), each summed in row order, then the partials are added in chunk
 * order, so the value is bit-identical for any number of OpenMP threads.
 * Backward is independent per row and runs in parallel over rows.
 *
 * Stability: BCE uses max(z,0) - z t + log1p(exp(-|z|)) and a sigmoid that
 * only exponentiates non-positive numbers, exact for |z| up to 1e4 and
 * beyond. CE subtracts the row max before exponentiating.
 *
 * Invalid CE targets (outside [0, V)) on a row with non-zero mask make the
 * forward loss NaN (so the trainer's finiteness check reports it) and that
 * row gets no gradient; backward cannot return an error.
 *
 * What it is not: a metrics module (accuracy etc. live with the tasks).
 */
#include "loss.h"

#include <math.h>
#include <stddef.h>

#define LOSS_CHUNKS 64
#define LOSS_PAR_MIN (1 << 15) /* elements before a parallel region pays off */

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

static double mask_at(const float *mask, int i) { return mask ? (double)mask[i] : 1.0; }

/* sum_i m_i in double, serially (N is small, and the order must be fixed) */
static double mask_total(const float *mask, int N) {
    if (!mask) return (double)N;
    double s = 0.0;
    for (int i = 0; i < N; i++) s += mask[i];
    return s;
}

static double sigmoid_d(double z) {
    if (z >= 0.0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* Row range [*i0, *i1) of chunk k when N rows are cut into LOSS_CHUNKS. */
static void chunk_rows(int k, int N, int *i0, int *i1) {
    int per = (N + LOSS_CHUNKS - 1) / LOSS_CHUNKS;
    long a = (long)k * per, b = a + per;
    *i0 = a < N ? (int)a : N;
    *i1 = b < N ? (int)b : N;
}

static double sum_chunks(const double *part) {
    double s = 0.0;
    for (int k = 0; k < LOSS_CHUNKS; k++) s += part[k];
    return s;
}

/* ------------------------------------------------------------------------ */
/* MSE: pred, target (N, O)                                                 */
/* ------------------------------------------------------------------------ */

double loss_mse_forward(const float *pred, const float *target, const float *mask, int N, int O) {
    if (N <= 0 || O <= 0) return 0.0;
    double msum = mask_total(mask, N);
    if (!(msum > 0.0)) return 0.0;
    double part[LOSS_CHUNKS];
#pragma omp parallel for schedule(static) if ((size_t)N * (size_t)O >= LOSS_PAR_MIN)
    for (int k = 0; k < LOSS_CHUNKS; k++) {
        int i0, i1;
        chunk_rows(k, N, &i0, &i1);
        double s = 0.0;
        for (int i = i0; i < i1; i++) {
            double m = mask_at(mask, i);
            if (m == 0.0) continue;
            const float *p = pred + (size_t)i * (size_t)O, *t = target + (size_t)i * (size_t)O;
            double r = 0.0;
            for (int o = 0; o < O; o++) {
                double d = (double)p[o] - (double)t[o];
                r += d * d;
            }
            s += m * r / O;
        }
        part[k] = s;
    }
    return sum_chunks(part) / msum;
}

/* dL/dpred_io = (m_i / sum m) * 2 (pred_io - target_io) / O */
void loss_mse_backward(float *dpred, float dloss, const float *pred, const float *target, const float *mask,
                       int N, int O) {
    if (N <= 0 || O <= 0) return;
    double msum = mask_total(mask, N);
    if (!(msum > 0.0)) return;
    double scale = (double)dloss * 2.0 / ((double)O * msum);
#pragma omp parallel for schedule(static) if ((size_t)N * (size_t)O >= LOSS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        double m = mask_at(mask, i);
        if (m == 0.0) continue;
        size_t off = (size_t)i * (size_t)O;
        for (int o = 0; o < O; o++)
            dpred[off + o] += (float)(scale * m * ((double)pred[off + o] - (double)target[off + o]));
    }
}

/* ------------------------------------------------------------------------ */
/* BCE on logits: pred (N), target (N) in [0, 1]                            */
/* ------------------------------------------------------------------------ */

/* -t log s(z) - (1-t) log(1 - s(z)) = max(z,0) - z t + log1p(e^-|z|) */
static double bce_row(double z, double t) { return fmax(z, 0.0) - z * t + log1p(exp(-fabs(z))); }

double loss_bce_forward(const float *pred, const float *target, const float *mask, int N) {
    if (N <= 0) return 0.0;
    double msum = mask_total(mask, N);
    if (!(msum > 0.0)) return 0.0;
    double part[LOSS_CHUNKS];
#pragma omp parallel for schedule(static) if (N >= LOSS_PAR_MIN)
    for (int k = 0; k < LOSS_CHUNKS; k++) {
        int i0, i1;
        chunk_rows(k, N, &i0, &i1);
        double s = 0.0;
        for (int i = i0; i < i1; i++) {
            double m = mask_at(mask, i);
            if (m == 0.0) continue;
            s += m * bce_row(pred[i], target[i]);
        }
        part[k] = s;
    }
    return sum_chunks(part) / msum;
}

/* dl/dz = sigmoid(z) - t */
void loss_bce_backward(float *dpred, float dloss, const float *pred, const float *target, const float *mask,
                       int N) {
    if (N <= 0) return;
    double msum = mask_total(mask, N);
    if (!(msum > 0.0)) return;
    double scale = (double)dloss / msum;
#pragma omp parallel for schedule(static) if (N >= LOSS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        double m = mask_at(mask, i);
        if (m == 0.0) continue;
        dpred[i] += (float)(scale * m * (sigmoid_d(pred[i]) - (double)target[i]));
    }
}

/* ------------------------------------------------------------------------ */
/* cross-entropy: logits (N, V), target (N) class indices                   */
/* ------------------------------------------------------------------------ */

/* log sum_v exp(x_v), with the max subtracted first (starting from x_0) */
static double row_logsumexp(const float *x, int V) {
    float mx = x[0];
    for (int v = 1; v < V; v++)
        if (x[v] > mx) mx = x[v];
    double s = 0.0;
    for (int v = 0; v < V; v++) s += exp((double)x[v] - (double)mx);
    return (double)mx + log(s);
}

double loss_ce_forward(const float *logits, const int *target, const float *mask, int N, int V) {
    if (N <= 0 || V <= 0) return 0.0;
    double msum = mask_total(mask, N);
    if (!(msum > 0.0)) return 0.0;
    double part[LOSS_CHUNKS];
#pragma omp parallel for schedule(static) if ((size_t)N * (size_t)V >= LOSS_PAR_MIN)
    for (int k = 0; k < LOSS_CHUNKS; k++) {
        int i0, i1;
        chunk_rows(k, N, &i0, &i1);
        double s = 0.0;
        for (int i = i0; i < i1; i++) {
            double m = mask_at(mask, i);
            if (m == 0.0) continue;
            int t = target[i];
            if (t < 0 || t >= V) {
                s += NAN; /* reported as a non-finite loss, see the header */
                continue;
            }
            const float *x = logits + (size_t)i * (size_t)V;
            double lse = row_logsumexp(x, V);
            s += m * (lse - (double)x[t]);
        }
        part[k] = s;
    }
    return sum_chunks(part) / msum;
}

/* dl/dx_v = softmax(x)_v - [v == t] */
void loss_ce_backward(float *dlogits, float dloss, const float *logits, const int *target, const float *mask,
                      int N, int V) {
    if (N <= 0 || V <= 0) return;
    double msum = mask_total(mask, N);
    if (!(msum > 0.0)) return;
    double scale = (double)dloss / msum;
#pragma omp parallel for schedule(static) if ((size_t)N * (size_t)V >= LOSS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        double m = mask_at(mask, i);
        if (m == 0.0) continue;
        int t = target[i];
        if (t < 0 || t >= V) continue;
        const float *x = logits + (size_t)i * (size_t)V;
        float *dx = dlogits + (size_t)i * (size_t)V;
        double lse = row_logsumexp(x, V);
        double w = scale * m;
        for (int v = 0; v < V; v++) {
            double p = exp((double)x[v] - lse);
            dx[v] += (float)(w * (p - (v == t ? 1.0 : 0.0)));
        }
    }
}
