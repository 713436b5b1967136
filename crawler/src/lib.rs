//! The crawler stage (planned): a polite, resumable async crawler of the Chinese web.
//!
//! It will read and write the `frontier` and `pages` tables through [`corpus::Store`] and turn
//! each HTML page into a document with the `extract` crate; the only async code of the
//! workspace lives here. Nothing is implemented yet: `zhcorpus crawl` does not exist until this
//! crate has its stage. Pages stored by other means are extracted with `zhcorpus extract --db`.
