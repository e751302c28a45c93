/* v4c info, v4c logits: inspect a checkpoint and compute logits. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "v4c.h"

static const char *kind_of(int ratio) { return ratio == 0 ? "SWA" : ratio == 4 ? "CSA" : "HCA"; }

static void print_count(const char *label, int64_t n) {
    printf("  %-28s %15lld  (%.3f M)\n", label, (long long)n, n / 1e6);
}

int cmd_info(int argc, char **argv) {
    const char *dir = NULL;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {0}};
    int o;
    while ((o = getopt_long(argc, argv, "m:vh", opts, NULL)) != -1) {
        if (o == 'm') dir = optarg;
        else if (o == 'v') v4c_set_verbose(1);
        else {
            fprintf(o == 'h' ? stdout : stderr, "usage: v4c info -m DIR [-v]\n");
            return o == 'h' ? 0 : 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "v4c info: -m DIR is required\n");
        return 2;
    }
    v4c_model *m = cli_open_model(dir);
    if (!m) return 1;
    const v4c_config *c = v4c_model_config(m);
    v4c_model_stats st;
    v4c_model_get_stats(m, &st);
    printf("model: %s\n", dir);
    printf("architecture: DeepSeek-V4, %d layers + %d MTP, hidden %d, vocab %d\n", c->n_layers, c->n_mtp, c->hidden_size, c->vocab_size);
    printf("attention: %d query heads x %d (rope %d), one shared KV head, q rank %d, %d output groups x %d, window %d\n",
           c->n_heads, c->head_dim, c->rope_dim, c->q_lora_rank, c->o_groups, c->o_lora_rank, c->window);
    printf("layers:");
    for (int l = 0; l < c->n_layers + c->n_mtp; l++)
        printf(" %s%s", l == c->n_layers ? "| mtp " : "", kind_of(c->compress_ratios[l]));
    printf("\n");
    printf("indexer: %d heads x %d, top-%d\n", c->index_n_heads, c->index_head_dim, c->index_topk);
    printf("moe: %d routed (top-%d, scale %g) + %d shared, width %d, %d hash layer(s)\n", c->n_routed_experts, c->n_experts_per_tok,
           c->route_scale, c->n_shared_experts, c->moe_inter, c->n_hash_layers);
    printf("mhc: %d streams, %d Sinkhorn iterations\n", c->hc_mult, c->hc_sinkhorn_iters);
    printf("parameters:\n");
    print_count("embedding + head", st.params_embed);
    print_count("attention", st.params_attn);
    print_count("compressors + indexers", st.params_compress);
    print_count("routed experts", st.params_routed);
    print_count("shared experts + routers", st.params_shared);
    print_count("mHC", st.params_hc);
    print_count("MTP blocks", st.params_mtp);
    print_count("final norm", st.params_other);
    print_count("total", st.params_total);
    printf("  %-28s %15lld\n", "block-scale elements", (long long)st.scale_elems);
    printf("bytes on disk: %lld (%.2f MiB); tensors used %d, ignored %d\n", (long long)st.bytes_on_disk, st.bytes_on_disk / 1048576.0,
           st.n_tensors_used, st.n_tensors_ignored);
    printf("kv cache (float32, main layers): %.1f bytes/token + %lld fixed bytes\n", st.kv_bytes_per_token, (long long)st.kv_fixed_bytes);
    v4c_model_free(m);
    return 0;
}

static int write_rows(FILE *f, const float *row, int n, const char *path) {
    if (fwrite(row, sizeof(float), n, f) != (size_t)n) {
        fprintf(stderr, "v4c: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

int cmd_logits(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL, *then = NULL, *mtp_next = NULL, *out = NULL, *mtp_out = NULL;
    int batch = 0, threads = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'}, {"then", required_argument, 0, 'T'},
        {"batch", required_argument, 0, 'b'}, {"mtp-next", required_argument, 0, 'N'}, {"output", required_argument, 0, 'o'},
        {"mtp-o", required_argument, 0, 'M'}, {"threads", required_argument, 0, 't'}, {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'}, {0}};
    const char *usage = "usage: v4c logits -m DIR --prompt IDS [--then IDS] [--batch N] [--mtp-next IDS] -o OUT.f32 [--mtp-o MTP.f32] [-t THREADS]\n";
    int o;
    while ((o = getopt_long(argc, argv, "m:p:b:o:t:vh", opts, NULL)) != -1) {
        switch (o) {
        case 'm': dir = optarg; break;
        case 'p': prompt = optarg; break;
        case 'T': then = optarg; break;
        case 'b': batch = atoi(optarg); break;
        case 'N': mtp_next = optarg; break;
        case 'o': out = optarg; break;
        case 'M': mtp_out = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'v': v4c_set_verbose(1); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!dir || !prompt || !out) {
        fprintf(stderr, "v4c logits: -m, --prompt and -o are required\n%s", usage);
        return 2;
    }
    int32_t *p_ids = NULL, *t_ids = NULL, *n_ids = NULL;
    int np = cli_parse_ids(prompt, &p_ids, "--prompt");
    int nt = then ? cli_parse_ids(then, &t_ids, "--then") : 0;
    int nn = mtp_next ? cli_parse_ids(mtp_next, &n_ids, "--mtp-next") : 0;
    int rc = 1;
    v4c_model *m = NULL;
    v4c_session *s = NULL;
    float *logits = NULL;
    FILE *fo = NULL, *fm = NULL;
    if (np < 0 || nt < 0 || nn < 0) goto done;
    if (np == 0) {
        fprintf(stderr, "v4c logits: --prompt has no token ids\n");
        goto done;
    }
    if (mtp_out && nn != nt + 1) {
        fprintf(stderr, "v4c logits: --mtp-o needs --mtp-next with one id per output row (%d), got %d\n", nt + 1, nn);
        goto done;
    }
    if (batch < 0) {
        fprintf(stderr, "v4c logits: --batch must be >= 1\n");
        goto done;
    }
    v4c_set_threads(threads);
    char err[V4C_ERR_LEN];
    if (!(m = cli_open_model(dir))) goto done;
    v4c_session_params sp = {.use_mtp = mtp_out != NULL};
    if (!(s = v4c_session_new(m, &sp, err))) {
        fprintf(stderr, "v4c: %s\n", err);
        goto done;
    }
    int V = v4c_model_config(m)->vocab_size;
    logits = malloc((size_t)V * sizeof(float));
    if (!(fo = fopen(out, "wb")) || (mtp_out && !(fm = fopen(mtp_out, "wb")))) {
        fprintf(stderr, "v4c: cannot open %s for writing\n", fo ? mtp_out : out);
        goto done;
    }
    int chunk = batch > 0 ? batch : np;
    for (int i = 0; i < np; i += chunk) {
        int k = np - i < chunk ? np - i : chunk;
        if (v4c_session_feed(s, p_ids + i, k, i + k == np ? logits : NULL, err)) {
            fprintf(stderr, "v4c: %s\n", err);
            goto done;
        }
    }
    for (int r = 0; r <= nt; r++) {
        if (r > 0 && v4c_session_feed(s, &t_ids[r - 1], 1, logits, err)) {
            fprintf(stderr, "v4c: %s\n", err);
            goto done;
        }
        if (write_rows(fo, logits, V, out)) goto done;
        if (fm) {
            if (v4c_session_mtp(s, n_ids[r], logits, err)) {
                fprintf(stderr, "v4c: %s\n", err);
                goto done;
            }
            if (write_rows(fm, logits, V, mtp_out)) goto done;
        }
    }
    rc = 0;
done:
    if (fo && fclose(fo)) rc = 1;
    if (fm && fclose(fm)) rc = 1;
    free(logits);
    v4c_session_free(s);
    v4c_model_free(m);
    free(p_ids);
    free(t_ids);
    free(n_ids);
    return rc;
}
