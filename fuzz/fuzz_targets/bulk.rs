#![no_main]

use ingest::formats::bulk::BulkKind;
use ingest::formats::{Bulk, WireFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let kind = BulkKind {
        index: Some("fuzz".to_owned()),
    };
    let _ = Bulk::decode(data, &kind, &threesigma_fuzz::context());
});
