//! Invariants of the wire codecs, for the fuzz targets (`fuzz/`) and the tests that replay
//! their corpora. Each function takes arbitrary bytes and panics if an invariant breaks.
//! Not part of the stable API.

use bytes::{Bytes, BytesMut};

use crate::frame::{
    ClientFrame, decode_client_frame, decode_server_frame, encode_input, put_output_header,
};
use crate::request::{decode_request, encode_request};

/// Longest error message a client is sent for a bad request: messages quote at most a
/// little of what was sent, never a whole (possibly megabyte) frame back.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 512;

/// A binary frame, as either side: decoding never panics, and whatever decodes encodes
/// back to exactly the same bytes.
#[doc(hidden)]
pub fn frames(data: &[u8]) {
    if let Ok(ClientFrame::Input {
        channel,
        data: payload,
    }) = decode_client_frame(data)
    {
        assert_eq!(
            &encode_input(channel, payload)[..],
            data,
            "INPUT round trip"
        );
    }
    if let Ok(frame) = decode_server_frame(Bytes::copy_from_slice(data)) {
        let mut again = BytesMut::new();
        put_output_header(&mut again, frame.kind, frame.channel, frame.offset);
        again.extend_from_slice(&frame.data);
        assert_eq!(&again[..], data, "OUTPUT/SNAPSHOT round trip");
    }
}

/// A text frame (its bytes lossily decoded as UTF-8): decoding never panics; a request
/// that decodes encodes to text that decodes to the same id and request; an error's message
/// is short, and never quotes what was sent as `auth` data.
#[doc(hidden)]
pub fn request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match decode_request(&text) {
        Ok(incoming) => {
            let Some(id) = incoming.id.clone() else {
                return;
            };
            let again = encode_request(&id, &incoming.request);
            let back = decode_request(&again).expect("an encoded request decodes");
            assert_eq!(back.id, Some(id), "id round trip");
            assert_eq!(back.request, incoming.request, "request round trip");
        }
        Err(e) => {
            assert!(
                e.message.len() <= MAX_ERROR_MESSAGE_BYTES,
                "a {}-byte error message",
                e.message.len()
            );
            // serde's messages can quote the offending value: an `auth` request's never.
            if is_auth(&text) && e.message.starts_with("invalid `auth`") {
                assert!(
                    e.message
                        .starts_with("invalid `auth` data: expected {username, password}"),
                    "the error may quote a credential: {}",
                    e.message
                );
            }
        }
    }
}

/// Whether `text` is a JSON object whose `type` is `auth`.
fn is_auth(text: &str) -> bool {
    matches!(
        serde_json::from_str::<serde_json::Value>(text),
        Ok(serde_json::Value::Object(envelope)) if envelope.get("type").and_then(|t| t.as_str()) == Some("auth")
    )
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The checked-in corpus of a fuzz target (`fuzz/corpus/NAME`), which must not be empty.
    fn corpus(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.expect("corpus entry").path();
                let data = std::fs::read(&path).expect("corpus file");
                (path, data)
            })
            .collect();
        files.sort();
        assert!(
            files.len() >= 10,
            "{} holds {} inputs",
            dir.display(),
            files.len()
        );
        files
    }

    #[test]
    fn the_frames_corpus_keeps_its_invariants() {
        for (path, data) in corpus("frames") {
            let run = std::panic::catch_unwind(|| super::frames(&data));
            assert!(run.is_ok(), "{}", path.display());
        }
    }

    #[test]
    fn the_request_corpus_keeps_its_invariants() {
        for (path, data) in corpus("request") {
            let run = std::panic::catch_unwind(|| super::request(&data));
            assert!(run.is_ok(), "{}", path.display());
        }
    }
}
