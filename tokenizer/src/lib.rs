//! The tokenizer stage (planned): a byte-level BPE trainer for Chinese that writes a Hugging
//! Face `tokenizer.json`, and an encoder that writes llm.c-format token shards from the kept
//! documents.
//!
//! Nothing is implemented yet: `zhcorpus tokenizer` does not exist until this crate has its
//! stage.
