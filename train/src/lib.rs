//! The pretraining stage (planned): a GPT on Candle over token shards, CPU by default and CUDA
//! behind a feature. It reads shards through `corpus` and never links `tokenizer`.
//!
//! Nothing is implemented yet: `zhcorpus train` does not exist until this crate has its stage.
