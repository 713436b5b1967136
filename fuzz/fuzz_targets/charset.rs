//! Any bytes: the charset decision and the decoding never panic, and the text is valid UTF-8
//! no longer than three bytes per input byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, charset) = extract::charset::decode(data, None);
    assert!(text.len() <= data.len() * 3 + 3);
    assert!(!charset.name.is_empty());
    let _ = extract::charset::sniff_meta(data);
});
