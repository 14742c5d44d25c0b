#![no_main]

use ingest::formats::native::Shape;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let context = threesigma_fuzz::context();
    for shape in [Shape::Json, Shape::Ndjson] {
        let _ = ingest::formats::native::decode_events(
            data,
            shape,
            context.received_at,
            &context.limits,
        );
    }
});
