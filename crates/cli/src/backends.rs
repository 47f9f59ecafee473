//! Backend selection by name: `cpu` (`cpu-winograd` with Winograd F(4×4) and
//! F(2×2) forward convolutions too, in every forward; `cpu-exact` in none, where `cpu` runs
//! them in the forwards no backward reads a mask of), `wgpu` when built with the `wgpu` feature, `cuda` (or `cuda:N` for device N;
//! `cuda-tf32[:N]` with the TF32 convolutions) with the `cuda` feature.

use gradcam_core::{Backend, Error, Result};

/// Backends this build offers.
pub const AVAILABLE: &[&str] = &[
    "cpu",
    "cpu-winograd",
    "cpu-exact",
    #[cfg(feature = "wgpu")]
    "wgpu",
    #[cfg(feature = "cuda")]
    "cuda",
    #[cfg(feature = "cuda")]
    "cuda-tf32",
];

/// Something to run on whichever backend is chosen.
pub trait WithBackend {
    /// What it returns.
    type Output;
    /// Runs on `backend`.
    fn run<B: Backend + Clone + 'static>(self, backend: B) -> Result<Self::Output>;
}

/// Runs `job` on the backend named `name`; `adapter` picks a wgpu adapter by name.
pub fn with_backend<J: WithBackend>(
    name: &str,
    adapter: Option<&str>,
    job: J,
) -> Result<J::Output> {
    match name {
        "cpu" => job.run(gradcam_cpu::CpuBackend::new()),
        "cpu-winograd" => job.run(gradcam_cpu::CpuBackend::new().with_winograd_forward(true)),
        "cpu-exact" => job.run(gradcam_cpu::CpuBackend::new().with_fast_forward(false)),
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            let choice = gradcam_wgpu::AdapterChoice {
                name: adapter.map(str::to_string),
            };
            job.run(gradcam_wgpu::WgpuBackend::with_adapter(&choice)?)
        }
        #[cfg(feature = "cuda")]
        cuda if cuda.starts_with("cuda") => {
            // cuda, cuda:N, cuda-tf32, cuda-tf32:N
            let (kind, ordinal) = cuda.split_once(':').unwrap_or((cuda, "0"));
            let bad = || {
                Error::InvalidArgument(format!(
                    "`{cuda}`: expected cuda, cuda:N, cuda-tf32 or cuda-tf32:N"
                ))
            };
            let tf32 = match kind {
                "cuda" => false,
                "cuda-tf32" => true,
                _ => return Err(bad()),
            };
            let ordinal = ordinal.parse().map_err(|_| bad())?;
            job.run(gradcam_cuda::CudaBackend::with_device(ordinal)?.with_tf32(tf32)?)
        }
        other => {
            let _ = adapter;
            Err(Error::Unsupported(format!(
                "backend `{other}` is not available in this build; available: {}",
                AVAILABLE.join(", ")
            )))
        }
    }
}
