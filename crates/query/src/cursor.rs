//! Opaque keyset cursors. A cursor names the last row of a page (its sort key); the next
//! page starts strictly after it. Clients must not parse or build cursors; the server
//! validates every one it receives, so a forged or damaged cursor is a 400, never a 500.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use web::ApiError;

/// Which listing a cursor belongs to; a cursor of one listing is refused by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorKind {
    Incidents,
    Logs,
    Services,
}

impl CursorKind {
    fn tag(self) -> &'static str {
        match self {
            CursorKind::Incidents => "i1",
            CursorKind::Logs => "l1",
            CursorKind::Services => "s1",
        }
    }
}

/// Encodes the keyset position (`at`, `id`).
pub fn encode(kind: CursorKind, at: DateTime<Utc>, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}:{id}", kind.tag(), at.timestamp_micros()))
}

fn invalid() -> ApiError {
    ApiError::BadRequest("invalid cursor: pass back next_cursor exactly as received".to_owned())
}

/// The text after `kind`'s tag in a cursor of `kind`.
fn payload(kind: CursorKind, cursor: &str) -> Result<String, ApiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(kind.tag())
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_owned)
        .ok_or_else(invalid)
}

/// Decodes a cursor of `kind`.
pub fn decode(kind: CursorKind, cursor: &str) -> Result<(DateTime<Utc>, i64), ApiError> {
    let text = payload(kind, cursor)?;
    let mut parts = text.split(':');
    let micros: i64 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let id: i64 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    if parts.next().is_some() {
        return Err(invalid());
    }
    let at = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok((at, id))
}

/// Encodes a position in a listing by name (the last name of the page).
pub fn encode_name(kind: CursorKind, name: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{name}", kind.tag()))
}

/// Decodes a cursor of `kind` made by [`encode_name`].
pub fn decode_name(kind: CursorKind, cursor: &str) -> Result<String, ApiError> {
    payload(kind, cursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_other_listings_are_refused() {
        let cursor = encode_name(CursorKind::Services, "checkout:eu");
        assert_eq!(
            decode_name(CursorKind::Services, &cursor).unwrap(),
            "checkout:eu"
        );
        let logs = encode(CursorKind::Logs, Utc::now(), 1);
        assert!(decode_name(CursorKind::Services, &logs).is_err());
    }

    #[test]
    fn round_trip() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_795_627_948_123_456).unwrap();
        let cursor = encode(CursorKind::Logs, at, 42);
        assert_eq!(decode(CursorKind::Logs, &cursor).unwrap(), (at, 42));
    }

    #[test]
    fn forged_cursors_are_bad_requests() {
        let at = Utc::now();
        let incidents = encode(CursorKind::Incidents, at, 1);
        for bad in [
            "!!!".to_owned(),
            URL_SAFE_NO_PAD.encode("l1:abc:1"),
            URL_SAFE_NO_PAD.encode("l1:1:2:3"),
            URL_SAFE_NO_PAD.encode("l1:99999999999999999999:1"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            incidents,
        ] {
            assert!(
                matches!(decode(CursorKind::Logs, &bad), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
