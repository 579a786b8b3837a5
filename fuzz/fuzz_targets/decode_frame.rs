//! Feeds arbitrary bytes to the frame decoder, in two pieces at a point the
//! input chooses: decoding must return frames or errors, never panic, never
//! allocate past `frame_size_max`, and every decoded frame must re-encode to
//! a frame that decodes to itself.
#![no_main]

use bytes::BytesMut;
use concord_transport::codec::FrameCodec;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

const FRAME_SIZE_MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else { return };
    let cut = usize::from(cut).min(data.len());
    let mut codec = FrameCodec::new(FRAME_SIZE_MAX);
    let mut src = BytesMut::from(&data[..cut]);
    let mut frames = Vec::new();
    let mut failed = false;
    loop {
        match codec.decode(&mut src) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed {
        src.extend_from_slice(&data[cut..]);
        while let Ok(Some(frame)) = codec.decode_eof(&mut src) {
            frames.push(frame);
        }
    }
    for frame in frames {
        let mut wire = BytesMut::new();
        if codec.encode_frame(&frame, &mut wire).is_ok() {
            let again = codec.decode(&mut wire).expect("re-encoded frame decodes").expect("whole frame");
            assert_eq!(again, frame);
        }
    }
});
