#![no_main]

use ingest::formats::loki::LokiEncoding;
use ingest::formats::{Loki, WireFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Loki::decode(data, &LokiEncoding::Protobuf, &threesigma_fuzz::context());
});
