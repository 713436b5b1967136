//! The crawler stage (planned): a polite, resumable async crawler of the Chinese web, and the
//! extractor that turns its HTML into documents.
//!
//! It will read and write the `frontier` and `pages` tables and add `documents` through
//! [`corpus::Store`]; the only async code of the workspace lives here. Nothing is implemented
//! yet: `zhcorpus crawl` does not exist until this crate has its stage.
