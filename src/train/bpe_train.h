/* Byte-level BPE training for `v4c tokenizer-train`: DeepSeek-V4's
 * pre-tokenizer splits the corpus, merges are learned greedily by pair
 * frequency, and the result is a tokenizer.json in the format the engine
 * reads, with BOS/EOS and the V4 special tokens (ids 0..). */
#ifndef V4C_TRAIN_BPE_H
#define V4C_TRAIN_BPE_H

/* Returns 0 or -1 with err. vocab_size counts the special tokens too. */
int bpe_train(const char *corpus_path, int vocab_size, const char *out_path, char *err);

#endif
