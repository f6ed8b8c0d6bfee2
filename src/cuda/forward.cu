/* The forward pass on the GPU for one context (gcu_model): packed variable-length sequences,
 * optional prefix KV cache, logits at chosen positions for chosen vocabulary rows.
 *
 * Per layer: x = norm(h); qkv = x Wqkv^T (one GEMM); per-head q/k norm + RoPE; attention ->
 * attn; h += norm(attn Wo^T); x = norm(h); gu = x Wgu^T (one GEMM); act = gelu(g) * u;
 * h += norm(act Wdown^T), fused with the next layer's input norm. Outputs: the requested
 * rows of h are gathered, final-normed, and multiplied by the requested lm_head rows (F32 in
 * every precision mode), then soft-capped. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc_cuda.h"

#define ALIGN 256
#define LOGITS_CHUNK_BYTES ((size_t)64 << 20) /* full-vocabulary logits are produced in chunks */
/* With a BF16 embedding table (GC_CUDA_BF16), label rows are uploaded in F32 from the host
 * model with the forward's inputs, up to this many bytes; more rows than that (a caller asking
 * for thousands of vocabulary rows) are gathered from the BF16 table instead. */
#define HOST_ROWS_BYTES ((size_t)16 << 20)

static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* Bytes of a forward's uploaded inputs (gcu_scratch.meta): T token ids, T sequence starts,
 * n_out output positions and n_rows vocabulary rows, then (host_rows) the rows' F32 values. */
static size_t inputs_bytes(size_t T, size_t n_out, size_t n_rows, size_t H, int host_rows)
{
    return align_up((2 * T + n_out + n_rows) * 4) + (host_rows ? align_up(n_rows * H * 4) : 0);
}

/* The capacity to allocate for `need` when `cap` is what the pool holds. */
static size_t grow(int need, int cap)
{
    if (need <= cap)
        return (size_t)cap;
    size_t g = (size_t)cap + (size_t)cap / 2;
    return g > (size_t)need ? g : (size_t)need;
}

/* Y[T][N] = X[T][K] W[N][K]^T (row-major), in the given precision. cuBLAS is column-major:
 * Y^T = W X^T with W seen as a K x N matrix, transposed. */
static int gemm(gcu_model *m, int prec, const void *W, const void *X, float *Y, int T, int N,
                int K, char *err, size_t errlen)
{
    const float one = 1.0f, zero = 0.0f;
    if (T == 0 || N == 0)
        return 0;
    switch (prec) {
    case GC_CUDA_TF32:
        BLAS_RET(cublasGemmEx(m->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, W, CUDA_R_32F, K,
                              X, CUDA_R_32F, K, &zero, Y, CUDA_R_32F, N,
                              CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
        break;
    case GC_CUDA_BF16:
        BLAS_RET(cublasGemmEx(m->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, W, CUDA_R_16BF,
                              K, X, CUDA_R_16BF, K, &zero, Y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
        break;
    default:
        BLAS_RET(cublasSgemm(m->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, (const float *)W, K,
                             (const float *)X, K, &zero, Y, N));
    }
    return 0;
}

/* Grows the scratch pool to hold `tokens` packed tokens, `outs` output rows, `rows` gathered
 * lm_head rows and `logit_elems` logits. Contents are not preserved. Growth is geometric
 * (at least 1.5x each dimension that grows): cudaFree synchronises the device, so a stream of
 * slowly growing batches must not reallocate on every forward. */
static int ensure_scratch(gcu_model *m, int tokens, int outs, int rows, size_t logit_elems,
                          char *err, size_t errlen)
{
    gcu_scratch *s = &m->s;
    const gc_config *k = &m->w->cfg;
    size_t H = k->hidden_size, I = k->intermediate_size;
    size_t qd = (size_t)k->n_heads * k->head_dim, kvd = (size_t)k->n_kv_heads * k->head_dim;
    size_t T = grow(tokens, s->cap_tokens), O = grow(outs, s->cap_out);
    size_t R = grow(rows, s->cap_rows);
    size_t L = logit_elems > O * R ? logit_elems : O * R;
    /* the pool only grows; logits are sized from what it already holds */
    size_t sizes[11] = {T * H * 4,            T * (qd + 2 * kvd) * 4, T * H * 4, T * 2 * I * 4,
                        T * H * 4,            T * qd * 4,             T * I * 4,
                        inputs_bytes(T, O, R, H, 1), 0, O * H * 4 + R * H * 4, L * 4};
    size_t total = 0;
    for (int i = 0; i < 11; i++)
        total += align_up(sizes[i]);
    if (s->pool && total <= s->bytes && (size_t)s->cap_tokens >= T && (size_t)s->cap_out >= O &&
        (size_t)s->cap_rows >= R && s->logit_cap >= L)
        return 0;
    if (s->pool) {
        gcu_graphs_clear(m); /* they hold pointers into the pool */
        cudaFree(s->pool);
        s->pool = NULL;
        s->bytes = 0;
        s->cap_tokens = s->cap_out = s->cap_rows = 0;
        s->logit_cap = 0;
    }
    size_t free_b = 0, total_b = 0;
    CU_RET(cudaMemGetInfo(&free_b, &total_b));
    if (total + ((size_t)16 << 20) > free_b)
        return gcu_fail(err, errlen,
                        "not enough GPU memory on device %d for a batch of %zu tokens: needs %zu "
                        "MiB of scratch, %zu MiB free of %zu MiB (use smaller batches)",
                        m->device, T, total >> 20, free_b >> 20, total_b >> 20);
    CU_RET(cudaMalloc(&s->pool, total));
    s->bytes = total;
    char *p = (char *)s->pool;
    void *part[11];
    for (int i = 0; i < 11; i++) {
        part[i] = p;
        p += align_up(sizes[i]);
    }
    s->h = (float *)part[0];
    s->qkv = (float *)part[1];
    s->tmp = (float *)part[2];
    s->gu = (float *)part[3];
    s->x = part[4];
    s->attn = part[5];
    s->act = part[6];
    s->meta = (int32_t *)part[7];
    s->outh = (float *)part[9];
    s->roww = s->outh + O * H;
    s->logits = (float *)part[10];
    s->cap_tokens = (int)T;
    s->cap_out = (int)O;
    s->cap_rows = (int)R;
    s->logit_cap = L;
    return 0;
}

/* Runs every layer over the T tokens whose ids and sequence starts are in m->s.meta, leaving
 * the last layer's output in m->s.h. With a prefix, positions start at its length and
 * attention sees its keys; with kv_out, each layer's keys and values after RoPE are copied
 * there ([layers][2][T][kvd]) to build a prefix. With sel (device indices of n_sel < T output
 * tokens), the last layer computes attention, projections and MLP for those tokens only (the
 * others' keys and values are all it needs of them) and leaves their output in m->s.outh
 * ([n_sel][hidden]) instead. */
static int run_layers(gcu_model *m, int T, const gcu_prefix *pre, float *kv_out,
                      const int32_t *sel, int n_sel, char *err, size_t errlen)
{
    const gcu_weights *w = m->w;
    const gc_config *k = &w->cfg;
    gcu_scratch *s = &m->s;
    cudaStream_t st = m->stream;
    int H = k->hidden_size, I = k->intermediate_size, hd = k->head_dim;
    int qd = k->n_heads * hd, kvd = k->n_kv_heads * hd, ld = qd + 2 * kvd;
    int prec = w->precision, bf16 = prec == GC_CUDA_BF16;
    int P = pre ? pre->n : 0;
    const int32_t *tok = s->meta, *seq_start = s->meta + T;
    float eps = k->rms_norm_eps;
    float scale = (float)(1.0 / sqrt((double)k->query_pre_attn_scalar));

    if (gcu_embed(st, w->embed, w->table_bf16, tok, T, H, (float)sqrt((double)H), s->h, err, errlen) ||
        gcu_rmsnorm(st, s->h, w->layers[0].input_norm, T, H, eps, s->x, bf16, err, errlen))
        return -1;
    for (int i = 0; i < k->n_layers; i++) {
        const gcu_layer *L = &w->layers[i];
        const int prune = sel && i == k->n_layers - 1;
        if (gemm(m, prec, L->wqkv, s->x, s->qkv, T, ld, H, err, errlen) ||
            gcu_qk_norm_rope(st, s->qkv, seq_start, P, T, k->n_heads, k->n_kv_heads, hd,
                             L->q_norm, L->k_norm, L->inv_freq, eps, err, errlen))
            return -1;
        if (kv_out) {
            float *dk = kv_out + (size_t)i * 2 * T * kvd, *dv = dk + (size_t)T * kvd;
            CU_RET(cudaMemcpy2DAsync(dk, (size_t)kvd * 4, s->qkv + qd, (size_t)ld * 4,
                                     (size_t)kvd * 4, T, cudaMemcpyDeviceToDevice, st));
            CU_RET(cudaMemcpy2DAsync(dv, (size_t)kvd * 4, s->qkv + qd + kvd, (size_t)ld * 4,
                                     (size_t)kvd * 4, T, cudaMemcpyDeviceToDevice, st));
        }
        gcu_attn_args a;
        a.qkv = s->qkv;
        a.seq_start = seq_start;
        a.pk = P ? pre->kv + (size_t)i * 2 * P * kvd : NULL;
        a.pv = P ? a.pk + (size_t)P * kvd : NULL;
        a.P = P;
        a.T = T;
        a.n_heads = k->n_heads;
        a.n_kv = k->n_kv_heads;
        a.hd = hd;
        a.window = k->layer_sliding[i] ? k->sliding_window : 0;
        a.scale = scale;
        a.qrows = prune ? sel : NULL;
        a.nq = prune ? n_sel : T;
        a.out = s->attn;
        a.bf16 = bf16;
        if (prune) {
            /* the selected rows' residual stream continues in outh */
            float *hs = s->outh;
            if (gcu_attention(st, &a, err, errlen) ||
                gcu_gather_rows(st, s->h, 0, sel, n_sel, H, hs, err, errlen) ||
                gemm(m, prec, L->wo, s->attn, s->tmp, n_sel, H, qd, err, errlen) ||
                gcu_residual_norm(st, hs, s->tmp, L->post_attn_norm, L->pre_ffn_norm, n_sel, H,
                                  eps, s->x, bf16, err, errlen) ||
                gemm(m, prec, L->wgu, s->x, s->gu, n_sel, 2 * I, H, err, errlen) ||
                gcu_gelu_gate(st, s->gu, n_sel, I, s->act, bf16, err, errlen) ||
                gemm(m, prec, L->wdown, s->act, s->tmp, n_sel, H, I, err, errlen) ||
                gcu_residual_norm(st, hs, s->tmp, L->post_ffn_norm, NULL, n_sel, H, eps, s->x,
                                  bf16, err, errlen))
                return -1;
            continue;
        }
        const float *next = i + 1 < k->n_layers ? w->layers[i + 1].input_norm : NULL;
        if (gcu_attention(st, &a, err, errlen) ||
            gemm(m, prec, L->wo, s->attn, s->tmp, T, H, qd, err, errlen) ||
            gcu_residual_norm(st, s->h, s->tmp, L->post_attn_norm, L->pre_ffn_norm, T, H, eps,
                              s->x, bf16, err, errlen) ||
            gemm(m, prec, L->wgu, s->x, s->gu, T, 2 * I, H, err, errlen) ||
            gcu_gelu_gate(st, s->gu, T, I, s->act, bf16, err, errlen) ||
            gemm(m, prec, L->wdown, s->act, s->tmp, T, H, I, err, errlen) ||
            gcu_residual_norm(st, s->h, s->tmp, L->post_ffn_norm, next, T, H, eps, s->x, bf16,
                              err, errlen))
            return -1;
    }
    return 0;
}

/* ---- CUDA graphs ---------------------------------------------------------------------------
 * A forward is about 10 launches per layer; at small batches the launches, not the GPU, set the
 * pace. The layer sequence of a forward is captured once per (token count, pruned output rows,
 * prefix), the second time that shape is seen (capture and instantiation cost more than one
 * forward's launches, so one-off shapes never pay it), and then replayed with one
 * cudaGraphLaunch. Token counts are padded to buckets
 * (graph_tokens) so that batches of similar size share a graph; the padding tokens are
 * one-token sequences of their own, so no real token attends to them. If capture fails
 * (e.g. an operation the driver refuses to capture), the context says nothing, clears the
 * error and uses plain launches, without padding, from then on. */

void gcu_graphs_clear(gcu_model *m)
{
    for (int i = 0; i < GCU_GRAPHS; i++) {
        if (m->graphs[i].exec)
            cudaGraphExecDestroy(m->graphs[i].exec);
        m->graphs[i].exec = NULL;
    }
    m->seen_n = m->seen_next = 0;
}

/* The padded token count: multiples of 16 up to 128, then steps of 1/8 of the largest power of
 * two not above T (at most 12.5 % padding). */
static int graph_tokens(const gcu_model *m, int T)
{
    if (m->graphs_off)
        return T;
    if (T <= 128)
        return (T + 15) / 16 * 16;
    int p = 128;
    while (p <= T / 2)
        p *= 2;
    int step = p / 8;
    return (T + step - 1) / step * step;
}

/* run_layers (without kv_out) through a captured graph when possible. */
static int run_layers_graph(gcu_model *m, int T, const gcu_prefix *pre, const int32_t *sel,
                            int n_sel, char *err, size_t errlen)
{
    if (m->graphs_off)
        return run_layers(m, T, pre, NULL, sel, n_sel, err, errlen);
    gcu_graph_key key;
    memset(&key, 0, sizeof key);
    key.T = T;
    key.n_sel = n_sel;
    key.P = pre ? pre->n : 0;
    key.pkv = pre ? pre->kv : NULL;
    gcu_graph *g = NULL, *slot = &m->graphs[0];
    for (int i = 0; i < GCU_GRAPHS && !g; i++) {
        gcu_graph *c = &m->graphs[i];
        if (c->exec && !memcmp(&c->key, &key, sizeof key))
            g = c;
        else if (slot->exec && (!c->exec || c->used < slot->used))
            slot = c; /* a free slot, else the least recently used */
    }
    if (!g) {
        int seen = 0;
        for (int i = 0; i < m->seen_n && !seen; i++)
            seen = !memcmp(&m->seen[i], &key, sizeof key);
        if (!seen) {
            m->seen[m->seen_next] = key;
            m->seen_next = (m->seen_next + 1) % GCU_GRAPHS;
            m->seen_n += m->seen_n < GCU_GRAPHS;
            return run_layers(m, T, pre, NULL, sel, n_sel, err, errlen);
        }
        cudaGraph_t graph = NULL;
        cudaGraphExec_t exec = NULL;
        if (cudaStreamBeginCapture(m->stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess) {
            int rc = run_layers(m, T, pre, NULL, sel, n_sel, err, errlen);
            if (cudaStreamEndCapture(m->stream, &graph) == cudaSuccess && rc == 0 &&
                cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess)
                exec = NULL;
            if (graph)
                cudaGraphDestroy(graph);
        }
        if (!exec) {
            (void)cudaGetLastError(); /* capture errors are not sticky */
            m->graphs_off = 1;
            return run_layers(m, T, pre, NULL, sel, n_sel, err, errlen);
        }
        if (slot->exec)
            cudaGraphExecDestroy(slot->exec);
        slot->exec = exec;
        slot->key = key;
        g = slot;
    }
    g->used = ++m->graph_clock;
    CU_RET(cudaGraphLaunch(g->exec, m->stream));
    return 0;
}

/* Pinned host staging of at least `bytes` (grown geometrically; pinned allocation is slow). */
static int ensure_host(gcu_model *m, size_t bytes, char *err, size_t errlen)
{
    if (bytes <= m->host_cap)
        return 0;
    size_t cap = m->host_cap * 2 > bytes ? m->host_cap * 2 : bytes;
    if (m->host) {
        CU_RET(cudaStreamSynchronize(m->stream)); /* no copy may still read it */
        cudaFreeHost(m->host);
        m->host = NULL;
        m->host_cap = 0;
    }
    CU_RET(cudaMallocHost(&m->host, cap));
    m->host_cap = cap;
    return 0;
}

/* Uploads the inputs of a forward in one copy from pinned memory: token ids and sequence
 * starts of T tokens padded to Tp (padding: id 0, each its own sequence), then n_out output
 * positions (out_idx, or 0..T-1 when NULL) and n_rows
 * vocabulary rows (when given), and with host_rows those rows of the host lm_head in F32, in
 * the layout of gcu_scratch.meta (inputs_bytes). The staging block is not touched again before
 * the stream has passed this copy (the next forward synchronises first). */
static int put_inputs(gcu_model *m, const int32_t *tokens, const int32_t *seq_len, int n_seq,
                      int T, int Tp, const int32_t *out_idx, int n_out, const int32_t *rows,
                      int n_rows, int host_rows, size_t down_bytes, char *err, size_t errlen)
{
    size_t H = (size_t)m->w->cfg.hidden_size;
    size_t n = (size_t)2 * Tp + n_out + n_rows;
    size_t up = inputs_bytes((size_t)Tp, (size_t)n_out, (size_t)n_rows, H, host_rows);
    if (ensure_host(m, up + down_bytes, err, errlen))
        return -1;
    int32_t *h = (int32_t *)m->host;
    memcpy(h, tokens, (size_t)T * sizeof *tokens);
    int32_t *start = h + Tp;
    for (int s = 0, t = 0; s < n_seq; s++) {
        for (int j = 0; j < seq_len[s]; j++)
            start[t + j] = t;
        t += seq_len[s];
    }
    for (int t = T; t < Tp; t++) {
        h[t] = 0;
        start[t] = t;
    }
    int32_t *o = start + Tp;
    for (int i = 0; i < n_out; i++)
        o[i] = out_idx ? out_idx[i] : i;
    if (n_rows > 0)
        memcpy(o + n_out, rows, (size_t)n_rows * sizeof *rows);
    if (host_rows) {
        float *dst = (float *)((char *)m->host + align_up(n * 4));
        for (int r = 0; r < n_rows; r++)
            memcpy(dst + (size_t)r * H, m->host_lm_head + (size_t)rows[r] * H, H * 4);
        n = up / 4;
    }
    CU_RET(cudaMemcpyAsync(m->s.meta, h, n * 4, cudaMemcpyHostToDevice, m->stream));
    return 0;
}

static int check_ids(const int32_t *ids, size_t n, int limit, const char *what, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= limit)
            return gcu_fail(err, errlen, "%s[%zu] = %d out of range [0, %d)", what, i,
                            (int)ids[i], limit);
    return 0;
}

int gcu_forward(gcu_model *m, const gcu_prefix *pre, gc_batch *b, char *err, size_t errlen)
{
    const gc_config *k = &m->w->cfg;
    int H = k->hidden_size, V = k->vocab_size;
    if (b->hidden)
        return gcu_fail(err, errlen, "hidden-state output is not supported on CUDA (use the CPU)");
    if (b->n_seq < 0 || (b->n_seq > 0 && (!b->tokens || !b->seq_len)))
        return gcu_fail(err, errlen, "invalid batch");
    if (pre && (pre->w != m->w || pre->device != m->device))
        return gcu_fail(err, errlen, "prefix was computed with another model or device");
    long long total = 0;
    for (int s = 0; s < b->n_seq; s++) {
        if (b->seq_len[s] < 1)
            return gcu_fail(err, errlen, "seq_len[%d] = %d (must be >= 1)", s, (int)b->seq_len[s]);
        total += b->seq_len[s];
    }
    if (total > INT_MAX / 4)
        return gcu_fail(err, errlen, "batch of %lld tokens is too large", total);
    int T = (int)total;
    int n_out = b->n_out < 0 ? T : b->n_out;
    int want = b->logits && n_out > 0;
    int n_rows = b->n_rows > 0 ? b->n_rows : V;
    if (T == 0)
        return 0;
    if (check_ids(b->tokens, (size_t)T, V, "tokens", err, errlen))
        return -1;
    if (want && b->n_out >= 0) {
        if (!b->out_idx)
            return gcu_fail(err, errlen, "out_idx missing");
        if (check_ids(b->out_idx, (size_t)n_out, T, "out_idx", err, errlen))
            return -1;
    }
    if (want && b->n_rows > 0) {
        if (!b->rows)
            return gcu_fail(err, errlen, "rows missing");
        if (check_ids(b->rows, (size_t)n_rows, V, "rows", err, errlen))
            return -1;
    }

    /* full-vocabulary logits go through a bounded buffer, chunk rows at a time */
    int chunk = n_out;
    size_t logit_elems = 0;
    if (want) {
        if (b->n_rows > 0) {
            logit_elems = (size_t)n_out * n_rows;
        } else {
            size_t c = LOGITS_CHUNK_BYTES / 4 / (size_t)V;
            chunk = c < 1 ? 1 : (c < (size_t)n_out ? (int)c : n_out);
            logit_elems = (size_t)chunk * V;
        }
    }
    CU_RET(cudaSetDevice(m->device));
    /* label logits come back through the pinned block; the whole vocabulary goes straight to
     * the caller's buffer, chunk by chunk */
    int label_rows = want && b->n_rows > 0;
    size_t down = label_rows ? (size_t)n_out * n_rows * 4 : 0;
    const int Tp = graph_tokens(m, T); /* the token count the layers run for */
    /* label rows stay F32 when the table on the device is BF16: taken from the host model */
    int host_rows = label_rows && m->w->table_bf16 && (size_t)n_rows * H * 4 <= HOST_ROWS_BYTES;
    if (ensure_scratch(m, Tp, want ? n_out : 0, label_rows ? n_rows : 0, logit_elems, err,
                       errlen) ||
        put_inputs(m, b->tokens, b->seq_len, b->n_seq, T, Tp, b->n_out >= 0 ? b->out_idx : NULL,
                   want ? n_out : 0, label_rows ? b->rows : NULL, label_rows ? n_rows : 0,
                   host_rows, down, err, errlen))
        goto sync_fail;
    if (!want) {
        if (run_layers_graph(m, Tp, pre, NULL, 0, err, errlen))
            goto sync_fail;
    } else {
        gcu_scratch *s = &m->s;
        cudaStream_t st = m->stream;
        cudaError_t ce;
        const int32_t *out_idx = s->meta + 2 * (size_t)Tp, *rows = out_idx + n_out;
        /* a few output positions (or padding): the last layer runs for them only, leaving
         * them in outh */
        int prune = n_out < Tp;
        if (run_layers_graph(m, Tp, pre, prune ? out_idx : NULL, prune ? n_out : 0, err,
                             errlen) ||
            (!prune && gcu_gather_rows(st, s->h, 0, out_idx, n_out, H, s->outh, err, errlen)) ||
            gcu_rmsnorm(st, s->outh, m->w->final_norm, n_out, H, k->rms_norm_eps, s->outh, 0,
                        err, errlen))
            goto sync_fail;
        if (label_rows) {
            size_t up = inputs_bytes((size_t)Tp, (size_t)n_out, (size_t)n_rows, (size_t)H, host_rows);
            float *staged = (float *)((char *)m->host + up);
            float *roww = host_rows ? (float *)((char *)s->meta +
                                                align_up(((size_t)2 * Tp + n_out + n_rows) * 4))
                                    : s->roww;
            if ((!host_rows && gcu_gather_rows(st, m->w->lm_head, m->w->table_bf16, rows, n_rows,
                                               H, s->roww, err, errlen)) ||
                gemm(m, GC_CUDA_F32, roww, s->outh, s->logits, n_out, n_rows, H, err, errlen) ||
                (k->final_softcap > 0.0f &&
                 gcu_softcap(st, s->logits, (size_t)n_out * n_rows, k->final_softcap, err,
                             errlen)))
                goto sync_fail;
            ce = cudaMemcpyAsync(staged, s->logits, down, cudaMemcpyDeviceToHost, st);
            if (ce == cudaSuccess)
                ce = cudaStreamSynchronize(st);
            if (ce != cudaSuccess) {
                gcu_fail(err, errlen, "copying logits: %s (%s)", cudaGetErrorString(ce),
                         cudaGetErrorName(ce));
                goto sync_fail;
            }
            memcpy(b->logits, staged, down);
            return 0;
        }
        for (int o = 0; o < n_out; o += chunk) {
            int c = n_out - o < chunk ? n_out - o : chunk;
            /* a BF16 table: the normed rows are rounded to BF16 too (one GEMM input type) */
            const float *xo = s->outh + (size_t)o * H;
            if ((m->w->table_bf16 &&
                 gcu_to_bf16(st, xo, (size_t)c * H, (__nv_bfloat16 *)s->x, err, errlen)) ||
                gemm(m, m->w->table_bf16 ? GC_CUDA_BF16 : GC_CUDA_F32, m->w->lm_head,
                     m->w->table_bf16 ? (const void *)s->x : (const void *)xo, s->logits, c, V,
                     H, err, errlen) ||
                (k->final_softcap > 0.0f &&
                 gcu_softcap(st, s->logits, (size_t)c * V, k->final_softcap, err, errlen)))
                goto sync_fail;
            /* the buffer is reused by the next chunk: wait for the copy (one chunk holds
             * 64 MiB of logits, so this is one wait per 64 MiB, none extra for small calls) */
            ce = cudaMemcpyAsync(b->logits + (size_t)o * V, s->logits, (size_t)c * V * 4,
                                 cudaMemcpyDeviceToHost, st);
            if (ce == cudaSuccess && o + c < n_out)
                ce = cudaStreamSynchronize(st);
            if (ce != cudaSuccess) {
                gcu_fail(err, errlen, "computing logits: %s (%s)", cudaGetErrorString(ce),
                         cudaGetErrorName(ce));
                goto sync_fail;
            }
        }
    }
    {
        cudaError_t ce = cudaStreamSynchronize(m->stream);
        if (ce != cudaSuccess) {
            gcu_fail(err, errlen, "forward: %s (%s)", cudaGetErrorString(ce),
                     cudaGetErrorName(ce));
            goto sync_fail;
        }
    }
    return 0;

sync_fail:
    /* leave no work in flight that still reads caller memory; keep the first message */
    cudaStreamSynchronize(m->stream);
    return -1;
}

int gcu_prefix_new(gcu_model *m, const int32_t *ids, int n, gcu_prefix **out, char *err,
                   size_t errlen)
{
    const gc_config *k = &m->w->cfg;
    size_t kvd = (size_t)k->n_kv_heads * k->head_dim;
    *out = NULL;
    if (n < 1 || !ids)
        return gcu_fail(err, errlen, "prefix needs at least one token");
    if (check_ids(ids, (size_t)n, k->vocab_size, "prefix ids", err, errlen))
        return -1;
    CU_RET(cudaSetDevice(m->device));
    gcu_prefix *p = (gcu_prefix *)calloc(1, sizeof *p);
    if (!p)
        return gcu_fail(err, errlen, "out of host memory");
    p->w = m->w;
    p->device = m->device;
    p->n = n;
    size_t bytes = (size_t)k->n_layers * 2 * n * kvd * 4, free_b = 0, total_b = 0;
    int32_t one = n;
    CU_GOTO(cudaMemGetInfo(&free_b, &total_b));
    if (bytes > free_b) {
        gcu_fail(err, errlen, "not enough GPU memory for a prefix of %d tokens (%zu MiB free)",
                 n, free_b >> 20);
        goto fail;
    }
    CU_GOTO(cudaMalloc(&p->kv, bytes));
    if (ensure_scratch(m, n, 0, 0, 0, err, errlen) ||
        put_inputs(m, ids, &one, 1, n, n, NULL, 0, NULL, 0, 0, 0, err, errlen) ||
        run_layers(m, n, NULL, p->kv, NULL, 0, err, errlen))
        goto fail;
    CU_GOTO(cudaStreamSynchronize(m->stream));
    *out = p;
    return 0;
fail:
    cudaStreamSynchronize(m->stream);
    if (p->kv)
        cudaFree(p->kv);
    free(p);
    return -1;
}

void gcu_prefix_free(gcu_prefix *p)
{
    if (!p)
        return;
    int prev = 0;
    if (cudaGetDevice(&prev) == cudaSuccess && cudaSetDevice(p->device) == cudaSuccess) {
        cudaFree(p->kv);
        cudaSetDevice(prev);
    }
    free(p);
}
