/* v4c serve: an OpenAI-compatible HTTP server with continuous batching
 * (src/serve/, docs/server.md). Runs until SIGINT or SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "serve/serve.h"
#include "v4c.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: v4c serve -m DIR [options]\n"
            "  --host H             address to listen on (default 127.0.0.1)\n"
            "  --port P             port (default 8080; 0 = any free port, printed at start)\n"
            "  --parallel N         sequences decoded together in one batch (default 4)\n"
            "  -c N                 context size per sequence (default: max_position_embeddings)\n"
            "  --api-key KEY        require 'Authorization: Bearer KEY' (not for /health)\n"
            "  --model-id NAME      the model name clients use (default: the directory's name)\n"
            "  --max-body BYTES     request body limit (default 8 MiB)\n"
            "  --max-queue N        requests waiting beyond the slots before 503 (default 256)\n"
            "  --cache-entries N    prefix-cache snapshots kept (default 8, 0 = off)\n"
            "  --prefill-chunk N    prompt tokens per sequence per forward (default 256)\n"
            "  --http-threads N     libmicrohttpd thread pool size (default parallel + 4)\n"
            "  -t N                 compute threads\n");
}

int cmd_serve(int argc, char **argv) {
    srv_options o;
    srv_options_default(&o);
    enum { O_HOST = 256, O_PORT, O_PAR, O_KEY, O_ID, O_BODY, O_QUEUE, O_CACHE, O_CHUNK, O_HTTP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"host", required_argument, 0, O_HOST}, {"port", required_argument, 0, O_PORT},
        {"parallel", required_argument, 0, O_PAR}, {"api-key", required_argument, 0, O_KEY}, {"model-id", required_argument, 0, O_ID},
        {"max-body", required_argument, 0, O_BODY}, {"max-queue", required_argument, 0, O_QUEUE},
        {"cache-entries", required_argument, 0, O_CACHE}, {"prefill-chunk", required_argument, 0, O_CHUNK},
        {"http-threads", required_argument, 0, O_HTTP}, {"ctx-size", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'}, {0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model_dir = optarg; break;
        case O_HOST: o.host = optarg; break;
        case O_PORT: o.port = cli_int("--port", optarg, 0, 65535); break;
        case O_PAR: o.parallel = cli_int("--parallel", optarg, 1, 256); break;
        case O_KEY: o.api_key = optarg; break;
        case O_ID: o.model_id = optarg; break;
        case O_BODY: o.max_body = (size_t)cli_int("--max-body", optarg, 1024, 1 << 30); break;
        case O_QUEUE: o.max_queue = cli_int("--max-queue", optarg, 1, 1 << 20); break;
        case O_CACHE: o.cache_entries = cli_int("--cache-entries", optarg, 0, 4096); break;
        case O_CHUNK: o.prefill_chunk = cli_int("--prefill-chunk", optarg, 1, 1 << 20); break;
        case O_HTTP: o.threads_http = cli_int("--http-threads", optarg, 1, 1024); break;
        case 'c': o.ctx = cli_int("-c", optarg, 2, 1 << 30); break;
        case 't': v4c_set_threads(cli_int("-t", optarg, 1, 1024)); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.model_dir) o.model_dir = getenv("V4C_MODEL");
    if (!o.model_dir || optind < argc) {
        fprintf(stderr, "v4c serve: %s\n", !o.model_dir ? "-m DIR is required (or set V4C_MODEL)" : "unexpected argument");
        usage(stderr);
        return 2;
    }
    /* Signals go to this thread only (sigwait below), not to the pool. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[V4C_ERR_LEN];
    srv_server *s = srv_start(&o, err);
    if (!s) {
        fprintf(stderr, "v4c serve: %s\n", err);
        return 1;
    }
    printf("v4c serve: listening on http://%s:%d (%d slots)\n", o.host, srv_port(s), o.parallel);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "v4c serve: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    srv_stop(s);
    return 0;
}
