//! What the fuzz targets share: a decoding context like ingest's defaults.

use std::sync::Arc;

use ingest::formats::{Context, ShipperSettings};

/// The context a request is decoded in, with ingest's default limits.
pub fn context() -> Context {
    Context {
        received_at: chrono::Utc::now(),
        limits: domain::EventLimits::default(),
        max_body_bytes: 16 << 20,
        shippers: Arc::new(ShipperSettings::default()),
    }
}
