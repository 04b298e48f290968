//! The binary frame codec. Every integer is big-endian.
//!
//! ```text
//! server → client  0x01 OUTPUT    | channel: u32 | offset: u64 | bytes
//! client → server  0x02 INPUT     | channel: u32 | bytes
//! server → client  0x03 SNAPSHOT  | channel: u32 | offset: u64 | bytes
//! ```
//! `offset` is the absolute position, in the pane's output log, of the first byte (OUTPUT) or
//! of the point the snapshot reflects (SNAPSHOT: reset the terminal, write the bytes, and the
//! stream continues at `offset`). An empty payload is valid.

use bytes::{BufMut, Bytes, BytesMut};

/// Header length of OUTPUT and SNAPSHOT frames: kind, channel, offset.
pub const OUTPUT_HEADER_BYTES: usize = 1 + 4 + 8;
/// Header length of INPUT frames: kind, channel.
pub const INPUT_HEADER_BYTES: usize = 1 + 4;

/// The first byte of a binary frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Terminal output (server → client).
    Output = 0x01,
    /// Terminal input (client → server).
    Input = 0x02,
    /// Terminal snapshot (server → client).
    Snapshot = 0x03,
}

/// Why a binary frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame is shorter than its header.
    #[error("binary frame too short: {len} bytes")]
    Truncated {
        /// Length of the frame received.
        len: usize,
    },
    /// The first byte is not a frame kind valid in this direction.
    #[error("unknown binary frame kind 0x{kind:02x}")]
    UnknownKind {
        /// The offending byte.
        kind: u8,
    },
}

/// A decoded client → server frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// Keystrokes or pasted bytes for an attached channel.
    Input {
        /// Channel from `session-attach`.
        channel: u32,
        /// Raw bytes for the pane.
        data: &'a [u8],
    },
}

/// A decoded server → client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    /// OUTPUT or SNAPSHOT.
    pub kind: FrameKind,
    /// Channel from `session-attach`.
    pub channel: u32,
    /// Absolute pane-log offset (see module docs).
    pub offset: u64,
    /// Terminal bytes.
    pub data: Bytes,
}

/// Decodes a frame a client sent.
pub fn decode_client_frame(frame: &[u8]) -> Result<ClientFrame<'_>, FrameError> {
    let Some((&kind, rest)) = frame.split_first() else {
        return Err(FrameError::Truncated { len: 0 });
    };
    if kind != FrameKind::Input as u8 {
        return Err(FrameError::UnknownKind { kind });
    }
    let Some((channel, data)) = rest.split_first_chunk::<4>() else {
        return Err(FrameError::Truncated { len: frame.len() });
    };
    Ok(ClientFrame::Input {
        channel: u32::from_be_bytes(*channel),
        data,
    })
}

/// Encodes an INPUT frame (client side).
pub fn encode_input(channel: u32, data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(INPUT_HEADER_BYTES + data.len());
    buf.put_u8(FrameKind::Input as u8);
    buf.put_u32(channel);
    buf.put_slice(data);
    buf.freeze()
}

/// Writes the header of an OUTPUT or SNAPSHOT frame; the caller appends the payload.
pub fn put_output_header(buf: &mut BytesMut, kind: FrameKind, channel: u32, offset: u64) {
    buf.put_u8(kind as u8);
    buf.put_u32(channel);
    buf.put_u64(offset);
}

/// Decodes a frame the server sent (client side).
pub fn decode_server_frame(frame: Bytes) -> Result<ServerFrame, FrameError> {
    let kind = match frame.first() {
        None => return Err(FrameError::Truncated { len: 0 }),
        Some(0x01) => FrameKind::Output,
        Some(0x03) => FrameKind::Snapshot,
        Some(&kind) => return Err(FrameError::UnknownKind { kind }),
    };
    if frame.len() < OUTPUT_HEADER_BYTES {
        return Err(FrameError::Truncated { len: frame.len() });
    }
    let channel = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
    let mut offset = [0u8; 8];
    offset.copy_from_slice(&frame[5..OUTPUT_HEADER_BYTES]);
    Ok(ServerFrame {
        kind,
        channel,
        offset: u64::from_be_bytes(offset),
        data: frame.slice(OUTPUT_HEADER_BYTES..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_short_and_foreign_frames() {
        assert_eq!(
            decode_client_frame(&[]),
            Err(FrameError::Truncated { len: 0 })
        );
        assert_eq!(
            decode_client_frame(&[2, 0, 0]),
            Err(FrameError::Truncated { len: 3 })
        );
        assert_eq!(
            decode_client_frame(&[1, 0, 0, 0, 1]),
            Err(FrameError::UnknownKind { kind: 1 })
        );
        let short = Bytes::from_static(&[1, 0, 0, 0, 1, 0]);
        assert_eq!(
            decode_server_frame(short),
            Err(FrameError::Truncated { len: 6 })
        );
    }

    proptest! {
        #[test]
        fn input_round_trips(channel: u32, data: Vec<u8>) {
            let frame = encode_input(channel, &data);
            prop_assert_eq!(
                decode_client_frame(&frame).unwrap(),
                ClientFrame::Input { channel, data: &data }
            );
        }

        #[test]
        fn output_round_trips(channel: u32, offset: u64, data: Vec<u8>, snapshot: bool) {
            let kind = if snapshot { FrameKind::Snapshot } else { FrameKind::Output };
            let mut buf = BytesMut::new();
            put_output_header(&mut buf, kind, channel, offset);
            buf.extend_from_slice(&data);
            let frame = decode_server_frame(buf.freeze()).unwrap();
            prop_assert_eq!(frame, ServerFrame { kind, channel, offset, data: Bytes::from(data) });
        }

        #[test]
        fn decoding_never_panics(data: Vec<u8>) {
            let _ = decode_client_frame(&data);
            let _ = decode_server_frame(Bytes::from(data));
        }
    }
}
