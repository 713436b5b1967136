//! llm.c token shards: written, read back, and refused with the file named when damaged.

use corpus::shards::{self, Dtype, ShardWriter, Split};

#[test]
fn shards_read_back_and_bad_shards_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<u32> = (0..1000).map(|i| (i * 37) % 65_536).collect();
    let p16 = dir.path().join("a.bin");
    shards::write_shard(&p16, &tokens, Dtype::U16).unwrap();
    let h = shards::read_header(&p16).unwrap();
    assert_eq!((h.dtype, h.tokens), (Dtype::U16, 1000));
    assert_eq!(shards::read_tokens(&p16).unwrap(), tokens);
    let bytes = std::fs::read(&p16).unwrap();
    assert_eq!(bytes.len(), 1024 + 2000);
    assert_eq!(&bytes[..4], &20240520i32.to_le_bytes());

    let wide: Vec<u32> = vec![0, 70_000, 151_000];
    let p32 = dir.path().join("b.bin");
    shards::write_shard(&p32, &wide, Dtype::U32).unwrap();
    assert_eq!(shards::read_tokens(&p32).unwrap(), wide);
    assert!(shards::write_shard(&dir.path().join("c.bin"), &wide, Dtype::U16).is_err());

    // truncated, and not a shard at all
    std::fs::write(&p16, &bytes[..bytes.len() - 3]).unwrap();
    let err = shards::read_header(&p16).unwrap_err().to_string();
    assert!(
        err.contains("a.bin") && err.contains("1000 tokens"),
        "{err}"
    );
    std::fs::write(&p16, vec![7u8; 2048]).unwrap();
    let err = shards::read_header(&p16).unwrap_err().to_string();
    assert!(err.contains("not an llm.c token shard"), "{err}");
}

#[test]
fn the_writer_cuts_shards_and_puts_end_of_text_before_each_document() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ShardWriter::new(dir.path(), Dtype::U16, 5, 9);
    w.add(Split::Train, &[1, 2, 3], 3).unwrap();
    w.add(Split::Val, &[4], 1).unwrap();
    w.add(Split::Train, &[5, 6, 7, 8], 4).unwrap();
    w.finish().unwrap();
    let files: Vec<(&str, u64)> = w
        .shards
        .iter()
        .map(|s| (s.file.as_str(), s.tokens))
        .collect();
    assert_eq!(
        files,
        [
            ("train_000000.bin", 5),
            ("train_000001.bin", 4),
            ("val_000000.bin", 2)
        ]
    );
    let read = |f: &str| shards::read_tokens(&dir.path().join(f)).unwrap();
    assert_eq!(read("train_000000.bin"), [9, 1, 2, 3, 9]);
    assert_eq!(read("train_000001.bin"), [5, 6, 7, 8]);
    assert_eq!(read("val_000000.bin"), [9, 4]);
    assert_eq!((w.documents.train, w.documents.val), (2, 1));
    assert_eq!((w.tokens.train, w.tokens.val), (9, 2));
}
