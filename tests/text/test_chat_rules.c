/* Chat-encoding rules beyond the golden files (spec/ENCODING.md): reasoning
 * effort, response_format and JSON number/string formatting, tool results
 * re-ordered by call order, non-JSON arguments, task tokens, chat mode with
 * tools, drop_thinking, and the error paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "v4c_text.h"

#define BOS "<｜begin▁of▁sentence｜>"
#define EOS "<｜end▁of▁sentence｜>"
#define U "<｜User｜>"
#define A "<｜Assistant｜>"
#define EFFORT_MAX                                                                                                    \
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\nYou MUST be very thorough in your thinking "     \
    "and comprehensively decompose the problem to resolve the root cause, rigorously stress-testing your logic "     \
    "against all potential paths, edge cases, and adversarial scenarios.\nExplicitly write out your entire "         \
    "deliberation process, documenting every intermediate step, considered alternative, and rejected hypothesis "   \
    "to ensure absolutely no assumption is left unchecked.\n\n"
#define TOOLS_END "You MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n"

static int failures;

static char *encode(const char *json, v4c_thinking_mode mode, v4c_reasoning_effort effort, int drop, char *err) {
    v4c_chat_options opt;
    v4c_chat_options_default(&opt);
    opt.thinking_mode = mode;
    opt.reasoning_effort = effort;
    opt.drop_thinking = drop;
    return v4c_chat_encode(json, strlen(json), &opt, NULL, err);
}

/* Checks the prompt, or its part after the tools section when `after_tools`. */
static void expect(const char *name, const char *json, v4c_thinking_mode mode, v4c_reasoning_effort effort, int drop,
                   int after_tools, const char *want) {
    char err[V4C_ERR_LEN] = "";
    char *got = encode(json, mode, effort, drop, err);
    const char *cmp = got;
    if (got && after_tools) {
        cmp = strstr(got, TOOLS_END);
        cmp = cmp ? cmp + strlen(TOOLS_END) : got;
    }
    if (!got || strcmp(cmp, want)) {
        printf("FAIL %s\n  got:  %s\n  want: %s\n  err:  %s\n", name, cmp ? cmp : "NULL", want, err);
        failures++;
    } else
        printf("ok   %s\n", name);
    free(got);
}

static void expect_error(const char *name, const char *json, const char *needle) {
    char err[V4C_ERR_LEN] = "";
    char *got = encode(json, V4C_MODE_THINKING, V4C_EFFORT_DEFAULT, 1, err);
    if (got || !strstr(err, needle)) {
        printf("FAIL %s: %s (err '%s', want '%s')\n", name, got ? "accepted" : "wrong error", err, needle);
        failures++;
    } else
        printf("ok   %s: %s\n", name, err);
    free(got);
}

int main(void) {
    const char *hi = "[{\"role\": \"user\", \"content\": \"hi\"}]";
    expect("effort max", hi, V4C_MODE_THINKING, V4C_EFFORT_MAX, 1, 0, BOS EFFORT_MAX U "hi" A "<think>");
    expect("effort high", hi, V4C_MODE_THINKING, V4C_EFFORT_HIGH, 1, 0, BOS U "hi" A "<think>");
    expect("effort max ignored in chat", hi, V4C_MODE_CHAT, V4C_EFFORT_MAX, 1, 0, BOS U "hi" A "</think>");

    expect("response_format and Python JSON",
           "[{\"role\": \"system\", \"content\": \"S\", \"response_format\": {\"type\": \"json_object\", \"x\": [1.0, "
           "1e-05, 0.0001, 1e16, 1e15, 0.1, -2.5e-7, 100, \"é\\n\\\"\\u0001\", true, null]}}, {\"role\": \"user\", "
           "\"content\": \"q\"}]",
           V4C_MODE_CHAT, V4C_EFFORT_DEFAULT, 1, 0,
           BOS "S\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n{\"type\": "
               "\"json_object\", \"x\": [1.0, 1e-05, 0.0001, 1e+16, 1000000000000000.0, 0.1, -2.5e-07, 100, "
               "\"é\\n\\\"\\u0001\", true, null]}" U "q" A "</think>");

    const char *tools_conv =
        "[{\"role\": \"system\", \"content\": \"S\", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": "
        "\"f\", \"parameters\": {}}}]},"
        "{\"role\": \"user\", \"content\": \"u\"},"
        "{\"role\": \"assistant\", \"reasoning_content\": \"r\", \"content\": \"\", \"tool_calls\": ["
        "{\"id\": \"a\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1, "
        "\\\"s\\\": \\\"v\\\", \\\"o\\\": {\\\"k\\\": [true]}}\"}},"
        "{\"id\": \"b\", \"type\": \"function\", \"function\": {\"name\": \"g\", \"arguments\": \"not json\"}},"
        "{\"id\": \"c\", \"type\": \"function\", \"function\": {\"name\": \"h\", \"arguments\": \"[1, 2]\"}}]},"
        "{\"role\": \"tool\", \"tool_call_id\": \"c\", \"content\": \"RC\"},"
        "{\"role\": \"tool\", \"tool_call_id\": \"a\", \"content\": \"RA\"},"
        "{\"role\": \"tool\", \"tool_call_id\": \"b\", \"content\": \"RB\"},"
        "{\"role\": \"user\", \"content\": \"thanks\"}]";
    const char *calls = "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n"
                        "<｜DSML｜parameter name=\"x\" string=\"false\">1</｜DSML｜parameter>\n"
                        "<｜DSML｜parameter name=\"s\" string=\"true\">v</｜DSML｜parameter>\n"
                        "<｜DSML｜parameter name=\"o\" string=\"false\">{\"k\": [true]}</｜DSML｜parameter>\n"
                        "</｜DSML｜invoke>\n<｜DSML｜invoke name=\"g\">\n"
                        "<｜DSML｜parameter name=\"arguments\" string=\"true\">not json</｜DSML｜parameter>\n"
                        "</｜DSML｜invoke>\n<｜DSML｜invoke name=\"h\">\n"
                        "<｜DSML｜parameter name=\"arguments\" string=\"true\">[1, 2]</｜DSML｜parameter>\n"
                        "</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
    char want[4096];
    snprintf(want, sizeof want,
             U "u" A "<think>r</think>%s" EOS U "<tool_result>RA</tool_result>\n\n<tool_result>RB</tool_result>\n\n"
               "<tool_result>RC</tool_result>\n\nthanks" A "<think>",
             calls);
    expect("tools: reordered results, non-JSON and non-object arguments, thinking kept", tools_conv,
           V4C_MODE_THINKING, V4C_EFFORT_DEFAULT, 1, 1, want);
    snprintf(want, sizeof want,
             U "u" A "</think>%s" EOS U "<tool_result>RA</tool_result>\n\n<tool_result>RB</tool_result>\n\n"
               "<tool_result>RC</tool_result>\n\nthanks" A "</think>",
             calls);
    expect("chat mode with tools", tools_conv, V4C_MODE_CHAT, V4C_EFFORT_DEFAULT, 1, 1, want);
    expect("top-level tools go on the first message",
           "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], \"messages\": "
           "[{\"role\": \"system\", \"content\": \"\"}, {\"role\": \"user\", \"content\": \"x\"}]}",
           V4C_MODE_THINKING, V4C_EFFORT_DEFAULT, 1, 1, U "x" A "<think>");
    {
        char err[V4C_ERR_LEN];
        char *got = encode("{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": "
                           "\"d\"}}], \"messages\": [{\"role\": \"system\", \"content\": \"\"}]}",
                           V4C_MODE_CHAT, V4C_EFFORT_DEFAULT, 1, err);
        const char *line = "### Available Tool Schemas\n\n{\"name\": \"f\", \"description\": \"d\"}\n\n" TOOLS_END;
        if (!got || strncmp(got, BOS "\n\n## Tools\n\n", strlen(BOS "\n\n## Tools\n\n")) || !strstr(got, line) ||
            strcmp(got + strlen(got) - strlen(line), line)) {
            printf("FAIL top-level tools section\n");
            failures++;
        } else
            printf("ok   top-level tools section\n");
        free(got);
    }

    expect("task query ends the prompt", "[{\"role\": \"user\", \"content\": \"q\", \"task\": \"query\"}]",
           V4C_MODE_THINKING, V4C_EFFORT_DEFAULT, 1, 0, BOS U "q<｜query｜>");
    expect("task action in thinking mode", "[{\"role\": \"user\", \"content\": \"q\", \"task\": \"action\"}]",
           V4C_MODE_THINKING, V4C_EFFORT_DEFAULT, 1, 0, BOS U "q" A "<think><｜action｜>");
    expect("task output has no reasoning",
           "[{\"role\": \"user\", \"content\": \"q\", \"task\": \"title\"}, {\"role\": \"assistant\", "
           "\"reasoning_content\": \"r\", \"content\": \"T\"}]",
           V4C_MODE_THINKING, V4C_EFFORT_DEFAULT, 1, 0, BOS U "q<｜title｜>T" EOS);

    const char *multi = "[{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"developer\", \"content\": \"D\"},"
                        "{\"role\": \"user\", \"content\": \"u1\"}, {\"role\": \"assistant\", \"reasoning_content\": "
                        "\"r1\", \"content\": \"c1\"}, {\"role\": \"user\", \"content\": \"u2\"}]";
    expect("drop_thinking drops old reasoning and developer", multi, V4C_MODE_THINKING, V4C_EFFORT_DEFAULT, 1, 0,
           BOS "S" U "u1" A "</think>c1" EOS U "u2" A "<think>");
    expect("keep thinking", multi, V4C_MODE_THINKING, V4C_EFFORT_DEFAULT, 0, 0,
           BOS "S" U "D" U "u1" A "<think>r1</think>c1" EOS U "u2" A "<think>");
    expect("latest_reminder after user",
           "[{\"role\": \"user\", \"content\": \"u\"}, {\"role\": \"latest_reminder\", \"content\": \"R\"}]",
           V4C_MODE_CHAT, V4C_EFFORT_DEFAULT, 1, 0, BOS U "u" A "</think><｜latest_reminder｜>R");
    expect("consecutive users merge",
           "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", "
           "\"text\": \"b\"}]}]",
           V4C_MODE_CHAT, V4C_EFFORT_DEFAULT, 1, 0, BOS U "a\n\nb" A "</think>");

    expect_error("invalid JSON", "[{\"role\": ", "invalid JSON");
    expect_error("not a list", "{\"role\": \"user\"}", "list of messages");
    expect_error("developer without content", "[{\"role\": \"developer\", \"content\": \"\"}]", "needs content");
    expect_error("unknown role", "[{\"role\": \"robot\", \"content\": \"x\"}]", "unknown role");
    expect_error("invalid task", "[{\"role\": \"user\", \"content\": \"x\", \"task\": \"dance\"}]", "invalid task");
    expect_error("bad content", "[{\"role\": \"user\", \"content\": 5}]", "content must be");

    printf("%s\n", failures ? "FAILED" : "OK");
    return failures != 0;
}
