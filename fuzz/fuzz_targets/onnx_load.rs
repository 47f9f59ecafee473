//! Any bytes given to the ONNX loader import or fail with an error; a panic is a bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = gradcam_onnx::from_bytes(data, None);
});
