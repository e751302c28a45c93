/* Generated from tests/data/tokenizer/deepseek-v4-tokenizer.json. */
#ifndef V4C_TRAIN_V4_SPECIAL_H
#define V4C_TRAIN_V4_SPECIAL_H

/* DeepSeek-V4's pre-tokenizer (tokenizer.json "pre_tokenizer"), verbatim. */
static const char v4_pre_tokenizer_json[] =
    "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{N}{1,3}\"},\"behavior\":\"Is"
    "olated\",\"invert\":false},{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[\\u4e00-\\u9fa5\\u3040-\\u309f\\u30a0-\\u30ff"
    "]+\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[!\\\"#$%&'()*+,\\\\-./:;"
    "<=>?@\\\\[\\\\\\\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\\\p{L}\\\\p{P}\\\\p{S}]?[\\\\p{L}\\\\p{M}]+| ?[\\\\p{P}\\\\p{S}]+[\\r\\n]*|"
    "\\\\s*[\\r\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix"
    "_space\":false,\"trim_offsets\":true,\"use_regex\":false}]}";

/* DeepSeek-V4's named special tokens (its tokenizer.json added_tokens,
 * without the reserved placeholders); ids 0 and 1 are BOS and EOS. */
static const char *const v4_special_tokens[] = {
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>", "<\uff5cend\u2581of\u2581sentence\uff5c>",
    "<\uff5c\u2581pad\u2581\uff5c>", "<\uff5cfim\u2581hole\uff5c>", "<\uff5cfim\u2581begin\uff5c>",
    "<\uff5cfim\u2581end\uff5c>", "<\uff5cUser\uff5c>", "<\uff5cAssistant\uff5c>", "<|EOT|>",
    "<\uff5ctool\u2581calls\u2581begin\uff5c>", "<\uff5ctool\u2581calls\u2581end\uff5c>",
    "<\uff5ctool\u2581call\u2581begin\uff5c>", "<\uff5ctool\u2581call\u2581end\uff5c>",
    "<\uff5ctool\u2581outputs\u2581begin\uff5c>", "<\uff5ctool\u2581outputs\u2581end\uff5c>",
    "<\uff5ctool\u2581output\u2581begin\uff5c>", "<\uff5ctool\u2581output\u2581end\uff5c>", "<\uff5ctool\u2581sep\uff5c>",
    "<\uff5cbegin\u2581of\u2581repo\u2581name\uff5c>", "<\uff5cend\u2581of\u2581repo\u2581name\uff5c>",
    "<\uff5cbegin\u2581of\u2581file\u2581name\uff5c>", "<\uff5cend\u2581of\u2581file\u2581name\uff5c>",
    "<\uff5cbegin\u2581of\u2581file\uff5c>", "<\uff5cend\u2581of\u2581file\uff5c>", "<think>", "</think>",
    "\uff5cDSML\uff5c", "<\uff5cbegin\u2581sys\uff5c>", "<\uff5cend\u2581sys\uff5c>", "<\uff5clatest_reminder\uff5c>",
    "<\uff5caction\uff5c>", "<\uff5cquery\uff5c>", "<\uff5cauthority\uff5c>", "<\uff5cdomain\uff5c>",
    "<\uff5ctask\uff5c>", "<\uff5cpolitical\uff5c>", "<\uff5centity\uff5c>", "<\uff5ctitle\uff5c>",
    "<\uff5csafety\uff5c>", "<\uff5canswer\uff5c>", "<\uff5csearch\uff5c>", "<dsml:", "</dsml:",
    "<\uff5csearch\u2581begin\uff5c>", "<\uff5csearch\u2581end\uff5c>", "<\uff5cextracted_url\uff5c>",
    "<\uff5cread_url\uff5c>", "<\uff5cend_of_query\uff5c>", "<\uff5crl_image_pad\uff5c>", "<\uff5crl_image_start\uff5c>",
    "<\uff5cimage2\uff5c>", "<\uff5c/table>\uff5c", "<\uff5ctable\uff5c>", "<\uff5c/td\uff5c>", "<\uff5ctd\uff5c>",
    "<\uff5c/tr\uff5c>", "<\uff5ctr\uff5c>", "<\uff5c/polygon\uff5c>", "<\uff5cpolygon\uff5c>", "<\uff5c/point\uff5c>",
    "<\uff5cpoint\uff5c>", "<\uff5c/box\uff5c>", "<\uff5cbox\uff5c>", "<\uff5c/ref\uff5c>", "<\uff5cref\uff5c>",
    "<\uff5cimage\uff5c>",
};

#endif
