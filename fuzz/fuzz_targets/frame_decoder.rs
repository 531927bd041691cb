//! Fuzzes the wire frame decoder: arbitrary bytes, fed in arbitrary pieces, must give
//! frames or named errors — never a panic, never unbounded buffering.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::net::frame::{decode_body, FrameReader};

fuzz_target!(|data: &[u8]| {
    // The first byte picks how the stream is cut, the rest is the stream.
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(cut % 31) + 1;
    let mut reader = FrameReader::new(4096);
    'feed: for chunk in stream.chunks(piece) {
        reader.extend(chunk);
        loop {
            match reader.next_frame() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    // Whole input as one frame body as well.
    let _ = decode_body(stream);
});
