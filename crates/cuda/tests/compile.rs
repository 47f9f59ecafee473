//! Every kernel file compiles with NVRTC, without an error or a warning, to PTX for sm_80 and
//! sm_90 — on a machine with no GPU (CI installs the `nvidia-cuda-nvrtc` wheel and points
//! `LD_LIBRARY_PATH` at it). Without NVRTC the test prints a notice and passes, unless
//! `GRADCAM_REQUIRE_NVRTC=1` (set by CI) makes that a failure.

use gradcam_cuda::kernels::{self, Output};

fn nvrtc() -> bool {
    if kernels::nvrtc_present() {
        return true;
    }
    assert!(
        std::env::var("GRADCAM_REQUIRE_NVRTC").as_deref() != Ok("1"),
        "GRADCAM_REQUIRE_NVRTC=1 but libnvrtc.so could not be loaded (LD_LIBRARY_PATH?)"
    );
    eprintln!("notice: NVRTC not found; CUDA kernels not compiled");
    false
}

#[test]
fn every_kernel_file_compiles_cleanly_for_sm80_and_sm90() {
    if !nvrtc() {
        return;
    }
    for (name, ..) in kernels::FILES {
        for arch in [80, 90] {
            let c = kernels::compile(name, arch, Output::Ptx)
                .unwrap_or_else(|e| panic!("{name}.cu for compute_{arch}: {e}"));
            assert!(
                c.log.is_empty(),
                "{name}.cu for compute_{arch}: NVRTC warnings:\n{}",
                c.log
            );
            let ptx = String::from_utf8(c.image).expect("PTX is text");
            assert!(
                ptx.contains(&format!(".target sm_{arch}")),
                "{name}.cu: PTX for another target"
            );
            assert!(
                ptx.contains(".entry"),
                "{name}.cu: no kernel entry in the PTX"
            );
        }
    }
}

#[test]
fn every_entry_point_the_backend_launches_exists() {
    if !nvrtc() {
        return;
    }
    // The backend names its kernels as (file, entry) pairs; each must be in its file's PTX.
    let src = [
        include_str!("../src/backend.rs"),
        include_str!("../src/backend/phases.rs"),
    ]
    .concat();
    let mut checked = 0;
    for (name, ..) in kernels::FILES {
        let ptx =
            String::from_utf8(kernels::compile(name, 90, Output::Ptx).unwrap().image).unwrap();
        let needle = format!("\"{name}\",");
        for (i, _) in src.match_indices(&needle) {
            if src[..i].ends_with("file: ") {
                continue; // a `Tiles` constant: checked below
            }
            // The entry names follow the file name in the same call.
            let rest = &src[i + needle.len()..];
            let call_end = rest.find(')').unwrap_or(rest.len());
            for entry in rest[..call_end].split('"').skip(1).step_by(2).filter(|e| {
                !e.is_empty() && e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }) {
                assert!(
                    ptx.contains(&format!(".entry {entry}(")),
                    "{name}.cu has no kernel `{entry}`"
                );
                checked += 1;
            }
        }
    }
    // The tiled GEMMs' entries are listed in `Tiles` constants naming their file.
    for block in src.split("Tiles {").skip(2) {
        let block = &block[..block.find("};").unwrap_or(block.len())];
        let mut names = block
            .split('"')
            .skip(1)
            .step_by(2)
            .filter(|e| !e.is_empty());
        let file = names.next().expect("a Tiles constant names its file");
        let ptx =
            String::from_utf8(kernels::compile(file, 90, Output::Ptx).unwrap().image).unwrap();
        for entry in names {
            assert!(
                ptx.contains(&format!(".entry {entry}(")),
                "{file}.cu has no kernel `{entry}`"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 30,
        "only {checked} entry points found in backend.rs"
    );
}

#[test]
fn a_broken_kernel_reports_nvrtcs_log() {
    if !nvrtc() {
        return;
    }
    let e = kernels::compile_source(
        "broken",
        "extern \"C\" __global__ void k() { undefined_x; }",
        90,
        Output::Ptx,
    )
    .err()
    .expect("a compile error");
    let msg = e.to_string();
    assert!(msg.contains("undefined_x"), "{msg}");
}

#[test]
fn without_a_driver_the_backend_is_an_error_not_a_panic() {
    match gradcam_cuda::CudaBackend::new() {
        Ok(b) => eprintln!("CUDA device present: {}", b.device()),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("cuda"), "{msg}");
            eprintln!("notice: {msg}");
        }
    }
}
