#![no_main]

use ingest::formats::otlp::OtlpEncoding;
use ingest::formats::{Otlp, WireFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Otlp::decode(data, &OtlpEncoding::Protobuf, &threesigma_fuzz::context());
});
