/* The special tokens of the DeepSeek-V4 chat format (spec/ENCODING.md),
 * shared by the encoder and the completion parser. */
#ifndef V4C_TEXT_CHAT_FORMAT_H
#define V4C_TEXT_CHAT_FORMAT_H

#define BOS_TOKEN "<｜begin▁of▁sentence｜>"
#define EOS_TOKEN "<｜end▁of▁sentence｜>"
#define USER_TOKEN "<｜User｜>"
#define ASSISTANT_TOKEN "<｜Assistant｜>"
#define LATEST_REMINDER_TOKEN "<｜latest_reminder｜>"
#define THINK_START "<think>"
#define THINK_END "</think>"
#define DSML "｜DSML｜"

#endif
