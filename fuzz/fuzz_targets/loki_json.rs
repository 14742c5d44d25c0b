#![no_main]

use ingest::formats::loki::LokiEncoding;
use ingest::formats::{Loki, WireFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Loki::decode(data, &LokiEncoding::Json, &threesigma_fuzz::context());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ingest::formats::loki::parse_labels(text);
    }
});
