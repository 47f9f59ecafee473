//! The CUDA C++ sources (top-level `kernels/`), embedded at build time, and their compilation
//! with NVRTC — to a CUBIN for the device's own architecture at run time (a PTX from an NVRTC
//! newer than the driver would not load), or to PTX for any architecture in the compile test.

use cudarc::nvrtc::{result, sys};
use gradcam_core::{Error, Result};
use std::ffi::{CStr, CString};

/// Declarations every kernel file shares (the parameter block, the signature), prepended to each.
const COMMON: &str = include_str!("../../../kernels/common.cuh");
/// The tiled GEMM shared by convolution and the linear layers.
const GEMM_TILE: &str = include_str!("../../../kernels/gemm_tile.cuh");

/// Every kernel file: (name, source, whether it needs the tiled GEMM).
pub const FILES: &[(&str, &str, bool)] = &[
    ("conv", include_str!("../../../kernels/conv.cu"), true),
    ("linear", include_str!("../../../kernels/linear.cu"), true),
    (
        "rectifiers",
        include_str!("../../../kernels/rectifiers.cu"),
        false,
    ),
    (
        "pooling",
        include_str!("../../../kernels/pooling.cu"),
        false,
    ),
    ("layout", include_str!("../../../kernels/layout.cu"), false),
    (
        "reductions",
        include_str!("../../../kernels/reductions.cu"),
        false,
    ),
    ("fusion", include_str!("../../../kernels/fusion.cu"), false),
    ("lrn", include_str!("../../../kernels/lrn.cu"), false),
];

/// The complete source of kernel file `name`, headers prepended.
pub fn source(name: &str) -> Option<String> {
    FILES.iter().find(|(n, ..)| *n == name).map(|(_, s, tile)| {
        if *tile {
            format!("{COMMON}\n{GEMM_TILE}\n{s}")
        } else {
            format!("{COMMON}\n{s}")
        }
    })
}

/// What to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// PTX for a virtual architecture (`compute_90`): what the CI compile test checks.
    Ptx,
    /// Machine code for a real architecture (`sm_90`): what the backend loads.
    Cubin,
}

/// A compiled kernel file and NVRTC's log (warnings; empty when clean).
pub struct Compiled {
    /// PTX text (NUL-free) or CUBIN bytes.
    pub image: Vec<u8>,
    /// NVRTC's log.
    pub log: String,
}

/// Whether the NVRTC library can be loaded (cudarc panics when it cannot).
pub fn nvrtc_present() -> bool {
    // SAFETY: only probes for the shared library.
    unsafe { sys::is_culib_present() }
}

fn err(msg: String) -> Error {
    Error::Backend {
        backend: "cuda".into(),
        msg,
    }
}

/// Compiles kernel file `name` for compute capability `arch` (e.g. 90 for sm_90). NVRTC's log is
/// part of the error on failure, and returned with the image on success.
pub fn compile(name: &str, arch: u32, output: Output) -> Result<Compiled> {
    if !nvrtc_present() {
        return Err(err(
            "NVRTC (libnvrtc.so) not found: install the CUDA toolkit or the `nvidia-cuda-nvrtc` \
             wheel and put its lib folder on LD_LIBRARY_PATH"
                .into(),
        ));
    }
    let src = source(name).ok_or_else(|| err(format!("no kernel file `{name}`")))?;
    compile_source(name, &src, arch, output)
}

/// Compiles a complete source as file `name` (see [`compile`]).
pub fn compile_source(name: &str, src: &str, arch: u32, output: Output) -> Result<Compiled> {
    if !nvrtc_present() {
        return Err(err("NVRTC (libnvrtc.so) not found".into()));
    }
    let csrc = CString::new(src).map_err(|e| err(format!("{name}.cu: {e}")))?;
    let cname = CString::new(format!("{name}.cu")).expect("no NUL in a file name");
    let prog = result::create_program(&csrc, Some(&cname)).map_err(|e| {
        err(format!(
            "{name}.cu: NVRTC could not create the program: {e:?}"
        ))
    })?;
    let target = match output {
        Output::Ptx => format!("--gpu-architecture=compute_{arch}"),
        Output::Cubin => format!("--gpu-architecture=sm_{arch}"),
    };
    let opts = [target.as_str(), "--std=c++17", "-default-device"];
    // SAFETY: `prog` is a live program; the options are valid C strings for the call.
    let compiled = unsafe { result::compile_program(prog, &opts) };
    let log = unsafe { result::get_program_log(prog) }
        .map(|raw| {
            // SAFETY: NVRTC's log is NUL-terminated.
            unsafe { CStr::from_ptr(raw.as_ptr()) }
                .to_string_lossy()
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let image = compiled
        .map_err(|e| err(format!("{name}.cu failed to compile ({e:?}):\n{log}")))
        .and_then(|()| match output {
            Output::Ptx => unsafe { result::get_ptx(prog) }
                .map(|p| {
                    p.into_iter()
                        .take_while(|c| *c != 0)
                        .map(|c| c as u8)
                        .collect()
                })
                .map_err(|e| err(format!("{name}.cu: no PTX: {e:?}"))),
            Output::Cubin => cubin(prog).map_err(|e| err(format!("{name}.cu: no CUBIN: {e:?}"))),
        });
    // SAFETY: the program is not used after this.
    let _ = unsafe { result::destroy_program(prog) };
    Ok(Compiled { image: image?, log })
}

fn cubin(prog: sys::nvrtcProgram) -> std::result::Result<Vec<u8>, result::NvrtcError> {
    let mut size = 0usize;
    // SAFETY: `prog` compiled successfully; the buffer is sized by NVRTC's own answer.
    unsafe {
        sys::nvrtcGetCUBINSize(prog, &mut size).result()?;
        let mut buf = vec![0u8; size];
        sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut std::ffi::c_char).result()?;
        Ok(buf)
    }
}
