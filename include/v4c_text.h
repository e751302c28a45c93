/* v4c text: the byte-level BPE tokenizer (tokenizer.json), the DeepSeek-V4
 * chat encoding (spec/ENCODING.md) and the parser that turns a completion
 * back into reasoning, content and tool calls.
 *
 * Errors are values: a function that can fail returns NULL or -1 and writes
 * one line naming the problem into `err` (V4C_ERR_LEN bytes). Strings are
 * UTF-8; returned buffers are malloc'd, NUL-terminated and owned by the
 * caller (free()). A loaded tokenizer is immutable: encode and decode may
 * run on it from several threads at once. */
#ifndef V4C_TEXT_H
#define V4C_TEXT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef V4C_ERR_LEN
#define V4C_ERR_LEN 512
#endif

struct json_t; /* Jansson, for callers that already hold parsed JSON */

/* ---- tokenizer ------------------------------------------------------------ */
typedef struct v4c_tokenizer v4c_tokenizer;

/* Loads a Hugging Face tokenizer.json (byte-level BPE). */
v4c_tokenizer *v4c_tokenizer_load(const char *path, char *err);
v4c_tokenizer *v4c_tokenizer_load_json(const struct json_t *root, char *err);
void v4c_tokenizer_free(v4c_tokenizer *tok);

/* One more than the largest token id. */
int32_t v4c_tokenizer_n_vocab(const v4c_tokenizer *tok);
/* Id of the token whose text is exactly `text` (added or vocabulary), -1. */
int32_t v4c_tokenizer_token_id(const v4c_tokenizer *tok, const char *text);
/* The bytes a token decodes to (not NUL-terminated), NULL for an unknown id. */
const char *v4c_tokenizer_token_bytes(const v4c_tokenizer *tok, int32_t id, size_t *len);
/* 1 if id is an added token (matched atomically in text), else 0. */
int v4c_tokenizer_is_added(const v4c_tokenizer *tok, int32_t id);

/* Encodes UTF-8 text without BOS. Returns the number of ids (stored in a
 * malloc'd *ids), or -1 for invalid UTF-8 (err names the byte offset). */
long v4c_tokenize(const v4c_tokenizer *tok, const char *text, size_t len, int32_t **ids, char *err);

/* Decodes ids to their raw bytes (may be invalid UTF-8 when the ids split a
 * character). Returns NULL for an unknown id. */
char *v4c_detokenize(const v4c_tokenizer *tok, const int32_t *ids, size_t n, size_t *len, char *err);

/* Streaming decoder: feed ids one at a time and get text that never ends in
 * the middle of a UTF-8 sequence (invalid bytes become U+FFFD). A special
 * token is one id, so it is always emitted whole. */
typedef struct v4c_stream_decoder v4c_stream_decoder;
v4c_stream_decoder *v4c_stream_decoder_new(const v4c_tokenizer *tok);
/* Sets *text to the newly complete text (valid until the next call) and
 * returns its length, or -1 for an unknown id. */
long v4c_stream_decoder_push(v4c_stream_decoder *d, int32_t id, const char **text, char *err);
/* End of stream: returns whatever is held back (incomplete bytes → U+FFFD). */
long v4c_stream_decoder_flush(v4c_stream_decoder *d, const char **text);
void v4c_stream_decoder_free(v4c_stream_decoder *d);

/* ---- chat encoding (spec/ENCODING.md) ------------------------------------- */
typedef enum { V4C_MODE_CHAT = 0, V4C_MODE_THINKING = 1 } v4c_thinking_mode;
typedef enum { V4C_EFFORT_DEFAULT = 0, V4C_EFFORT_HIGH, V4C_EFFORT_MAX } v4c_reasoning_effort;

typedef struct {
    v4c_thinking_mode thinking_mode;
    int drop_thinking; /* default 1; forced off when any message has tools */
    v4c_reasoning_effort reasoning_effort;
    int add_bos; /* default 1; 0 when continuing an already-encoded context */
} v4c_chat_options;

void v4c_chat_options_default(v4c_chat_options *opt);

/* Messages: a JSON array of OpenAI-format messages, or an object
 * {"messages": [...], "tools": [...]} whose tools go on the first message.
 * Returns the prompt string (length in *len when len is not NULL). */
char *v4c_chat_encode(const char *json, size_t json_len, const v4c_chat_options *opt, size_t *len, char *err);
char *v4c_chat_encode_json(const struct json_t *messages, const v4c_chat_options *opt, size_t *len, char *err);

/* Encodes and tokenizes. The special tokens of the format become single
 * tokens when the tokenizer defines them; a missing one is tokenized as
 * text and reported once per tokenizer on stderr. */
long v4c_chat_encode_ids(const v4c_tokenizer *tok, const char *json, size_t json_len, const v4c_chat_options *opt,
                         int32_t **ids, char *err);

/* ---- completion parser ---------------------------------------------------- */
typedef struct {
    char *name;
    char *arguments; /* a JSON object, serialized */
} v4c_tool_call;

/* What one feed produced. Pointers stay valid until the next call. */
typedef struct {
    const char *reasoning;
    size_t reasoning_len;
    const char *content;
    size_t content_len;
    const v4c_tool_call *tool_calls; /* tool calls completed by this feed */
    int n_tool_calls;
    int done; /* the end-of-sentence token was reached */
} v4c_completion_delta;

typedef struct v4c_completion_parser v4c_completion_parser;

v4c_completion_parser *v4c_completion_parser_new(v4c_thinking_mode mode);
/* Feeds more completion text. Text that might be the start of a special
 * token is held back until it is known not to be. Returns 0, or -1 on
 * malformed markup (err gives the byte offset). */
int v4c_completion_parser_feed(v4c_completion_parser *p, const char *text, size_t len, v4c_completion_delta *delta,
                               char *err);
/* End of the completion: -1 unless it was complete (ended with EOS). */
int v4c_completion_parser_finish(v4c_completion_parser *p, char *err);
/* The whole assistant message so far as OpenAI-format JSON:
 * {"role", "content", "reasoning_content", "tool_calls"}. */
char *v4c_completion_parser_message(const v4c_completion_parser *p, size_t *len);
void v4c_completion_parser_free(v4c_completion_parser *p);

/* One-shot: parses a whole completion into the assistant message JSON. */
char *v4c_parse_completion(const char *text, size_t len, v4c_thinking_mode mode, size_t *out_len, char *err);

#ifdef __cplusplus
}
#endif

#endif
