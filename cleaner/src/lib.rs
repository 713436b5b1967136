//! The cleaner stage (planned): normalisation, Chinese quality rules, a quality classifier and
//! PII masking, recording one verdict per document in `clean_verdicts` with the rule and the
//! measured value that decided it. Documents themselves are never rewritten.
//!
//! Nothing is implemented yet: `zhcorpus clean` does not exist until this crate has its stage.
