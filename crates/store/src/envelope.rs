//! The envelope: one recorded event as the store sees it, and its wire bytes.
//!
//! Wire format (format version 1), stored as the value of the `log` tree:
//! `bincode(Body) ‖ hash[32]`, where `Body` is every envelope field except the hash,
//! encoded with bincode 2 `standard()` (little-endian, variable-length integers) and
//! `hash = SHA-256(prev_hash ‖ bincode(Body))`. `prev_hash` is itself the first thing an
//! auditor needs and is also inside `Body`, so the chain can be re-checked with any SHA-256
//! tool from an export's base64 `raw` field: split off the last 32 bytes, hash the rest with
//! the previous line's hash in front.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::StoreError;

/// Largest payload the store accepts; bigger ones are refused before anything is written.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Largest `meta.actor`, in bytes.
pub const MAX_ACTOR_BYTES: usize = 256;
/// Largest `meta.reason`, in bytes.
pub const MAX_REASON_BYTES: usize = 8 * 1024;
/// Largest `meta.source`, in bytes.
pub const MAX_SOURCE_BYTES: usize = 1024;
/// Largest event type name, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 64;
/// Largest whole envelope (body and hash) the store writes: every field at its limit fits,
/// and it stays well under [`DECODE_LIMIT_BYTES`], so whatever is acknowledged decodes again.
pub const MAX_ENVELOPE_BYTES: usize = MAX_PAYLOAD_BYTES + 16 * 1024;
/// Upper bound handed to bincode so that a corrupt length prefix cannot allocate gigabytes.
pub const DECODE_LIMIT_BYTES: usize = 2 << 20;

/// The hash of "before the first event".
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// Who recorded an event and why: carried by every envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Metadata {
    /// Who recorded it (a login or clerk name).
    pub actor: String,
    /// Why, in the recorder's words.
    pub reason: Option<String>,
    /// The document it rests on, e.g. `青教〔2023〕61号`.
    pub source: Option<String>,
}

/// An event handed to `append`: the store adds sequence, time and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id (UUID v7); a retry with the same id and content is idempotent.
    pub event_id: Uuid,
    /// Name of the event type, e.g. `RotationStarted`.
    pub event_type: String,
    /// Schema version of the payload's shape, for upcasting.
    pub schema_version: u16,
    /// Opaque payload bytes (the domain's encoding).
    pub payload: Vec<u8>,
    /// Who, why, on what authority.
    pub meta: Metadata,
}

/// One recorded event with everything the store knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Global sequence number, from 1, gap-free.
    pub seq: u64,
    /// Event id (UUID v7).
    pub event_id: Uuid,
    /// The stream (entity) it belongs to.
    pub stream: String,
    /// Version of the stream after this event, from 1.
    pub stream_version: u64,
    /// When the ledger learned it: microseconds since the Unix epoch, never decreasing.
    pub recorded_at_us: i64,
    /// Who, why, on what authority.
    pub meta: Metadata,
    /// Event type name.
    pub event_type: String,
    /// Schema version of the payload.
    pub schema_version: u16,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Hash of the previous envelope (zeros for the first).
    pub prev_hash: [u8; 32],
    /// SHA-256(prev_hash ‖ body bytes).
    pub hash: [u8; 32],
}

/// The hashed part of an envelope, in wire order. Field order is the wire format.
#[derive(Serialize, Deserialize)]
struct Body {
    seq: u64,
    event_id: [u8; 16],
    stream: String,
    stream_version: u64,
    recorded_at_us: i64,
    actor: String,
    reason: Option<String>,
    source: Option<String>,
    event_type: String,
    schema_version: u16,
    #[serde(with = "raw_bytes")]
    payload: Vec<u8>,
    prev_hash: [u8; 32],
}

/// The payload as one byte string rather than a sequence of `u8`s. The bytes on the wire
/// are the same (bincode writes a `u8` as one raw byte either way; the golden-byte test
/// holds), but decoding copies the block at once instead of visiting every byte, which
/// made a large payload cost milliseconds to read.
mod raw_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT_BYTES>()
}

/// Encode any serde value with the store's one bincode configuration.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| StoreError::Encode(e.to_string()))
}

/// Decode any serde value with the store's one bincode configuration; trailing bytes are an error.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let (value, used) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(value)
}

/// SHA-256 of `prev ‖ body`.
pub(crate) fn chain_hash(prev: &[u8; 32], body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body);
    h.finalize().into()
}

impl Envelope {
    /// Build an envelope, computing its hash.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn seal(
        seq: u64,
        stream: &str,
        stream_version: u64,
        recorded_at_us: i64,
        event: &NewEvent,
        prev_hash: [u8; 32],
    ) -> Result<(Envelope, Vec<u8>), StoreError> {
        let mut env = Envelope {
            seq,
            event_id: event.event_id,
            stream: stream.to_owned(),
            stream_version,
            recorded_at_us,
            meta: event.meta.clone(),
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            prev_hash,
            hash: [0; 32],
        };
        let body = env.body_bytes()?;
        env.hash = chain_hash(&prev_hash, &body);
        let mut raw = body;
        raw.extend_from_slice(&env.hash);
        // Never acknowledge what could not be read back: the bytes must be within the size
        // limit and decode, under the decoder's own limits, to exactly this envelope.
        if raw.len() > MAX_ENVELOPE_BYTES {
            return Err(StoreError::InvalidAppend(format!(
                "event {} would be stored as {} bytes; the limit for one event is {MAX_ENVELOPE_BYTES}",
                event.event_id,
                raw.len()
            )));
        }
        match Envelope::from_bytes(&raw) {
            Ok(back) if back == env => {}
            _ => {
                return Err(StoreError::InvalidAppend(format!(
                    "event {} would not decode again after it was written; it was refused",
                    event.event_id
                )));
            }
        }
        Ok((env, raw))
    }

    fn body_bytes(&self) -> Result<Vec<u8>, StoreError> {
        encode(&Body {
            seq: self.seq,
            event_id: *self.event_id.as_bytes(),
            stream: self.stream.clone(),
            stream_version: self.stream_version,
            recorded_at_us: self.recorded_at_us,
            actor: self.meta.actor.clone(),
            reason: self.meta.reason.clone(),
            source: self.meta.source.clone(),
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            payload: self.payload.clone(),
            prev_hash: self.prev_hash,
        })
    }

    /// The wire bytes of this envelope (body ‖ hash).
    pub fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let mut raw = self.body_bytes()?;
        raw.extend_from_slice(&self.hash);
        Ok(raw)
    }

    /// Decode wire bytes. Does not check the hash (see [`Envelope::hash_is_valid`]); never panics.
    pub fn from_bytes(raw: &[u8]) -> Result<Envelope, String> {
        if raw.len() < 32 {
            return Err(format!(
                "envelope is {} bytes, shorter than its hash",
                raw.len()
            ));
        }
        let (body_bytes, hash_bytes) = raw.split_at(raw.len() - 32);
        let body: Body = decode(body_bytes)?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(hash_bytes);
        Ok(Envelope {
            seq: body.seq,
            event_id: Uuid::from_bytes(body.event_id),
            stream: body.stream,
            stream_version: body.stream_version,
            recorded_at_us: body.recorded_at_us,
            meta: Metadata {
                actor: body.actor,
                reason: body.reason,
                source: body.source,
            },
            event_type: body.event_type,
            schema_version: body.schema_version,
            payload: body.payload,
            prev_hash: body.prev_hash,
            hash,
        })
    }

    /// Decode wire bytes and say whether the stored hash is SHA-256(prev_hash ‖ stored body):
    /// the hash is checked over the bytes as stored, exactly as an auditor's tool would.
    pub fn decode_checked(raw: &[u8]) -> Result<(Envelope, bool), String> {
        let env = Envelope::from_bytes(raw)?;
        let valid = chain_hash(&env.prev_hash, &raw[..raw.len() - 32]) == env.hash;
        Ok((env, valid))
    }

    /// Whether `hash` equals SHA-256(prev_hash ‖ body) for the body as this build encodes it.
    pub fn hash_is_valid(&self) -> bool {
        match self.body_bytes() {
            Ok(body) => chain_hash(&self.prev_hash, &body) == self.hash,
            Err(_) => false,
        }
    }

    /// Check the sizes of a new event's fields against the documented limits.
    pub(crate) fn check_limits(event: &NewEvent) -> Result<(), StoreError> {
        let fields = [
            ("payload", event.payload.len(), MAX_PAYLOAD_BYTES),
            ("event_type", event.event_type.len(), MAX_EVENT_TYPE_BYTES),
            ("meta.actor", event.meta.actor.len(), MAX_ACTOR_BYTES),
            (
                "meta.reason",
                event.meta.reason.as_ref().map_or(0, String::len),
                MAX_REASON_BYTES,
            ),
            (
                "meta.source",
                event.meta.source.as_ref().map_or(0, String::len),
                MAX_SOURCE_BYTES,
            ),
        ];
        for (field, len, max) in fields {
            if len > max {
                return Err(StoreError::InvalidAppend(format!(
                    "field {field} of event {} is {len} bytes; the limit is {max} bytes",
                    event.event_id
                )));
            }
        }
        Ok(())
    }

    /// The same limits for an envelope read from elsewhere (an import).
    pub fn check_stored_limits(&self) -> Result<(), String> {
        Envelope::check_limits(&NewEvent {
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            payload: Vec::new(),
            meta: self.meta.clone(),
        })
        .map_err(|e| e.to_string())?;
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(format!(
                "field payload is {} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes",
                self.payload.len()
            ));
        }
        Ok(())
    }

    /// Whether this envelope carries the same event as `event` (for idempotent retries).
    pub(crate) fn same_content(&self, stream: &str, event: &NewEvent) -> bool {
        self.stream == stream
            && self.event_type == event.event_type
            && self.schema_version == event.schema_version
            && self.payload == event.payload
            && self.meta == event.meta
    }
}
