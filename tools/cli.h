/* Subcommand entry points and small helpers shared by the CLI files. */
#ifndef V4C_CLI_H
#define V4C_CLI_H

#include <stdint.h>

int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);

/* v4c_model_open, printing the one-line error to stderr on failure. */
struct v4c_model *cli_open_model(const char *dir);

/* Parse "1,2,3" into a malloc'd array; returns count, or -1 with a message. */
int cli_parse_ids(const char *s, int32_t **out, const char *what);

/* text commands */
int cmd_tokenize(int argc, char **argv);
int cmd_chat_template(int argc, char **argv);
int cmd_parse_completion(int argc, char **argv);


/* generation commands */
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_gen_model(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Strict number parsing for options: exits with a message on bad input. */
int cli_int(const char *opt, const char *arg, int min, int max);
float cli_float(const char *opt, const char *arg, float min, float max);

/* server */
int cmd_serve(int argc, char **argv);
/* training */
int cmd_train(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_tokenizer_train(int argc, char **argv);
/* The bundled model directory (models/default), or NULL if absent. */
const char *cli_default_model(void);
#endif
