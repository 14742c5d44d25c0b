//! Helpers the shippers' formats share: walking protobuf messages field by field (so that
//! records are decoded and turned into events one at a time, never all at once), and a
//! bound on how many records a JSON body may make the decoder allocate.
//!
//! Decoding a whole protobuf or JSON request into its generated types first would let a
//! small body allocate far beyond itself: an empty log record is 2 bytes on the wire and
//! ~200 bytes decoded, so 16 MiB of them would take 1.6 GB.

use std::cell::Cell;

use prost::bytes::Buf;
use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

use super::{BodyError, MAX_EVENTS_PER_BODY};

/// Calls `visit(field number, bytes)` for every length-delimited field of a protobuf
/// message, in order, skipping the others. `encoding` names the format in errors.
pub fn for_each_message<'a>(
    mut buf: &'a [u8],
    encoding: &'static str,
    mut visit: impl FnMut(u32, &'a [u8]) -> Result<(), BodyError>,
) -> Result<(), BodyError> {
    let corrupt = |reason: &str| BodyError::Corrupt {
        encoding,
        reason: reason.to_owned(),
    };
    while buf.has_remaining() {
        let key = prost::encoding::decode_varint(&mut buf).map_err(|_| corrupt("bad field key"))?;
        let field = u32::try_from(key >> 3).map_err(|_| corrupt("bad field number"))?;
        match key & 7 {
            0 => {
                prost::encoding::decode_varint(&mut buf).map_err(|_| corrupt("bad varint"))?;
            }
            1 => skip(&mut buf, 8).ok_or_else(|| corrupt("truncated fixed64"))?,
            5 => skip(&mut buf, 4).ok_or_else(|| corrupt("truncated fixed32"))?,
            2 => {
                let length =
                    prost::encoding::decode_varint(&mut buf).map_err(|_| corrupt("bad length"))?;
                let length = usize::try_from(length)
                    .ok()
                    .filter(|length| *length <= buf.len())
                    .ok_or_else(|| corrupt("field longer than the message"))?;
                let (bytes, rest) = buf.split_at(length);
                buf = rest;
                visit(field, bytes)?;
            }
            _ => return Err(corrupt("unsupported wire type (groups)")),
        }
    }
    Ok(())
}

fn skip(buf: &mut &[u8], count: usize) -> Option<()> {
    let rest = buf.get(count..)?;
    *buf = rest;
    Some(())
}

/// Decodes one protobuf message, naming the format in the error.
pub fn decode_message<M: prost::Message + Default>(
    bytes: &[u8],
    encoding: &'static str,
) -> Result<M, BodyError> {
    M::decode(bytes).map_err(|error| BodyError::Corrupt {
        encoding,
        reason: error.to_string(),
    })
}

thread_local! {
    /// Records a JSON decode may still allocate on this thread (see [`counted_json`]).
    static RECORDS_LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Deserializes `body` as `T` on this thread with at most [`MAX_EVENTS_PER_BODY`] records
/// allocated by fields read with [`bounded`]; past it the body is refused (413) before the
/// rest is allocated.
pub fn counted_json<'de, T: Deserialize<'de>>(
    body: &'de [u8],
    encoding: &'static str,
) -> Result<T, BodyError> {
    RECORDS_LEFT.with(|left| left.set(MAX_EVENTS_PER_BODY));
    let result = serde_json::from_slice::<T>(body);
    let exhausted = RECORDS_LEFT.with(|left| {
        let exhausted = left.get() == 0;
        left.set(usize::MAX);
        exhausted
    });
    result.map_err(|error| {
        if exhausted {
            BodyError::TooManyEvents {
                limit: MAX_EVENTS_PER_BODY,
            }
        } else {
            BodyError::Corrupt {
                encoding,
                reason: error.to_string(),
            }
        }
    })
}

/// `deserialize_with` for a list of records inside [`counted_json`]: each element counts
/// against the body's bound.
pub fn bounded<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
        type Value = Vec<T>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("a list")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            loop {
                let left = RECORDS_LEFT.with(Cell::get);
                if left == 0 {
                    return Err(serde::de::Error::custom("too many records"));
                }
                let Some(item) = seq.next_element()? else {
                    return Ok(items);
                };
                RECORDS_LEFT.with(|cell| cell.set(left - 1));
                items.push(item);
            }
        }
    }

    deserializer.deserialize_seq(Bounded(std::marker::PhantomData))
}

/// Nanoseconds since the epoch as a time; `None` for 0 (unknown) or out of range.
pub fn from_unix_nanos(nanos: u64) -> Option<chrono::DateTime<chrono::Utc>> {
    if nanos == 0 {
        return None;
    }
    i64::try_from(nanos)
        .ok()
        .map(chrono::DateTime::from_timestamp_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_walked_and_truncation_is_corrupt() {
        // field 1 varint 150, field 2 bytes "hi", field 3 fixed32, field 2 bytes "x"
        let message = [
            0x08, 0x96, 0x01, 0x12, 2, b'h', b'i', 0x1d, 1, 2, 3, 4, 0x12, 1, b'x',
        ];
        let mut seen = Vec::new();
        for_each_message(&message, "test", |field, bytes| {
            seen.push((field, bytes.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![(2, b"hi".to_vec()), (2, b"x".to_vec())]);
        for cut in 1..message.len() {
            let truncated = &message[..cut];
            let complete = [3, 7, 12].contains(&cut);
            let walked = for_each_message(truncated, "test", |_, _| Ok(()));
            assert_eq!(walked.is_ok(), complete, "cut at {cut}");
        }
    }

    #[test]
    fn json_lists_are_bounded_per_body() {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(deserialize_with = "bounded")]
            a: Vec<u8>,
            #[serde(deserialize_with = "bounded")]
            b: Vec<u8>,
        }
        let small: Body = counted_json(br#"{"a":[1,2],"b":[3]}"#, "test").unwrap();
        assert_eq!((small.a.len(), small.b.len()), (2, 1));
        let many = format!(
            r#"{{"a":[{}],"b":[1,2]}}"#,
            vec!["0"; MAX_EVENTS_PER_BODY - 1].join(",")
        );
        let error = counted_json::<Body>(many.as_bytes(), "test").err().unwrap();
        assert!(matches!(error, BodyError::TooManyEvents { .. }), "{error}");
        let bad = counted_json::<Body>(b"{", "test").err().unwrap();
        assert!(matches!(bad, BodyError::Corrupt { .. }));
    }
}
