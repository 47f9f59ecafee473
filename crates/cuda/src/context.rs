//! The device: context and its one stream, the compiled modules (once per process and device),
//! device memory, launches and transfers.

use crate::kernels::{self, Output};
use crate::pool::{DeviceBuffer, Pool};
use cudarc::driver::{
    sys, CudaContext, CudaFunction, CudaModule, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use gradcam_core::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Parameters of one launch, laid out as the kernels' `Params` struct (common.cuh), passed by
/// value.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Params {
    pub a: [u32; 4],
    pub b: [u32; 4],
    pub c: [u32; 4],
    pub d: [u32; 4],
    pub e: [u32; 4],
    pub f: [f32; 4],
}

// SAFETY: a plain `#[repr(C)]` struct of 4-byte fields, matching the kernels' `Params`.
unsafe impl DeviceRepr for Params {}

pub(crate) fn err(msg: impl Into<String>) -> Error {
    Error::Backend {
        backend: "cuda".into(),
        msg: msg.into(),
    }
}

fn driver_err(what: &str, e: cudarc::driver::DriverError) -> Error {
    let msg = format!("{what}: {e}");
    if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        err(format!("out of device memory ({msg})"))
    } else {
        err(msg)
    }
}

/// Elements actually allocated for a request (shared rounding with the wgpu pool).
fn bucket(len: usize) -> usize {
    (gradcam_core::pool_bucket(len as u64 * 4) / 4) as usize
}

/// The device, its stream, the module cache and the memory pool.
pub(crate) struct Device {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub name: String,
    /// Compute capability as major·10 + minor (90 for an H100).
    pub arch: u32,
    pub sms: u32,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<(&'static str, &'static str), CudaFunction>>,
    pub pool: Arc<Pool>,
    pub allocations: AtomicUsize,
}

/// One device per ordinal per process: modules are compiled once and shared by every backend
/// value on that device.
static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<Device>>>> = OnceLock::new();

impl Device {
    /// The device with this ordinal, opened on first use.
    pub fn get(ordinal: usize) -> Result<Arc<Device>> {
        let devices = DEVICES.get_or_init(Default::default);
        let mut g = devices.lock().expect("device table lock");
        if let Some(d) = g.get(&ordinal) {
            return Ok(d.clone());
        }
        let d = Arc::new(Device::open(ordinal)?);
        g.insert(ordinal, d.clone());
        Ok(d)
    }

    fn open(ordinal: usize) -> Result<Device> {
        // SAFETY: only probes for the shared library (cudarc panics when it is absent).
        if !unsafe { sys::is_culib_present() } {
            return Err(err(
                "the CUDA driver library (libcuda.so) was not found: no NVIDIA driver on this \
                 machine",
            ));
        }
        if !kernels::nvrtc_present() {
            return Err(err(
                "NVRTC (libnvrtc.so) was not found: the CUDA backend compiles its kernels at run \
                 time; install the CUDA toolkit or the `nvidia-cuda-nvrtc` wheel and put its lib \
                 folder on LD_LIBRARY_PATH",
            ));
        }
        let count = CudaContext::device_count().map_err(|e| driver_err("cuInit", e))?;
        if ordinal >= count.max(0) as usize {
            return Err(err(format!(
                "no CUDA device {ordinal}: {count} device(s) present"
            )));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| driver_err("opening the device", e))?;
        // One stream, so buffers need no cross-stream events.
        // SAFETY: every buffer is used on the context's default stream only.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| driver_err("compute capability", e))?;
        let sms = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| driver_err("multiprocessor count", e))?;
        let name = ctx.name().unwrap_or_else(|_| "CUDA device".into());
        let total = ctx.total_mem().unwrap_or(0);
        // Keep at most a quarter of the card idle in the pool.
        let pool = Pool::new(ctx.clone(), (total / 4).max(1 << 28));
        Ok(Device {
            ctx,
            stream,
            name,
            arch: (major * 10 + minor) as u32,
            sms: sms.max(1) as u32,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            pool,
            allocations: AtomicUsize::new(0),
        })
    }

    /// The function `entry` of kernel file `file`, compiling the file on first use.
    pub fn function(&self, file: &'static str, entry: &'static str) -> Result<CudaFunction> {
        if let Some(f) = self.functions.lock().expect("lock").get(&(file, entry)) {
            return Ok(f.clone());
        }
        let module = self.module(file)?;
        let f = module
            .load_function(entry)
            .map_err(|e| driver_err(&format!("kernel {file}::{entry}"), e))?;
        self.functions
            .lock()
            .expect("lock")
            .insert((file, entry), f.clone());
        Ok(f)
    }

    fn module(&self, file: &'static str) -> Result<Arc<CudaModule>> {
        let mut g = self.modules.lock().expect("module lock");
        if let Some(m) = g.get(file) {
            return Ok(m.clone());
        }
        let compiled = kernels::compile(file, self.arch, Output::Cubin)?;
        let m = self
            .ctx
            .load_module(Ptx::from_binary(compiled.image))
            .map_err(|e| driver_err(&format!("loading {file}.cu for sm_{}", self.arch), e))?;
        g.insert(file, m.clone());
        Ok(m)
    }

    /// A device buffer of at least `len` elements (contents undefined), from the pool when one
    /// of its size is free.
    pub fn alloc(&self, len: usize) -> Result<DeviceBuffer> {
        if len > u32::MAX as usize {
            return Err(err(format!(
                "a tensor of {len} values: the CUDA kernels count elements in 32 bits \
                 (split the batch)"
            )));
        }
        let n = bucket(len.max(1));
        if let Some(s) = self.pool.take(n) {
            return Ok(self.pool.wrap(s));
        }
        self.allocations.fetch_add(1, Ordering::Relaxed);
        // SAFETY: every kernel writes all the elements of the tensor it produces before any read.
        let s = match unsafe { self.stream.alloc::<f32>(n) } {
            Ok(s) => s,
            Err(_) => {
                // Give the pool's idle memory back and try once more.
                self.pool.release();
                unsafe { self.stream.alloc::<f32>(n) }
                    .map_err(|e| driver_err(&format!("allocating {} MB", n * 4 / 1_000_000), e))?
            }
        };
        Ok(self.pool.wrap(s))
    }

    /// Copies host data into a new buffer.
    pub fn upload(&self, data: &[f32]) -> Result<DeviceBuffer> {
        let mut b = self.alloc(data.len())?;
        self.write(&mut b, data)?;
        Ok(b)
    }

    /// Copies host data into the start of `b` (a buffer of at least `data.len()` values).
    pub fn write(&self, b: &mut DeviceBuffer, data: &[f32]) -> Result<()> {
        if b.raw().len() < data.len() {
            return Err(err(format!(
                "{} values into a device buffer of {}",
                data.len(),
                b.raw().len()
            )));
        }
        if !data.is_empty() {
            let s = b.slice.as_mut().expect("a live buffer");
            let mut view = s.slice_mut(0..data.len());
            self.stream
                .memcpy_htod(data, &mut view)
                .map_err(|e| driver_err("copy to the device", e))?;
        }
        Ok(())
    }

    /// Copies the first `len` elements to the host (waits for the stream).
    pub fn download(&self, b: &DeviceBuffer, len: usize) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; len];
        if len > 0 {
            let view = b.raw().try_slice(0..len).ok_or_else(|| {
                err(format!(
                    "a tensor of {len} values on a buffer of {}",
                    b.raw().len()
                ))
            })?;
            self.stream
                .memcpy_dtoh(&view, &mut out)
                .map_err(|e| driver_err("copy to the host", e))?;
        }
        self.stream
            .synchronize()
            .map_err(|e| driver_err("waiting for the device", e))?;
        Ok(out)
    }

    /// Launches `file::entry` with the parameter block, up to three inputs (absent ones bound to
    /// `dummy`) and the output; a kernel declared with `ARGS2` takes a second output, `out2`.
    #[allow(clippy::too_many_arguments)]
    pub fn launch(
        &self,
        file: &'static str,
        entry: &'static str,
        p: Params,
        inputs: &[&DeviceBuffer],
        dummy: &DeviceBuffer,
        out: &DeviceBuffer,
        out2: Option<&DeviceBuffer>,
        grid: [u32; 3],
        block: u32,
    ) -> Result<()> {
        let f = self.function(file, entry)?;
        let ins: Vec<&cudarc::driver::CudaSlice<f32>> = (0..3)
            .map(|i| inputs.get(i).copied().unwrap_or(dummy).raw())
            .collect();
        let mut b = self.stream.launch_builder(&f);
        b.arg(&p).arg(ins[0]).arg(ins[1]).arg(ins[2]).arg(out.raw());
        if let Some(o) = out2 {
            b.arg(o.raw());
        }
        let cfg = LaunchConfig {
            grid_dim: (grid[0], grid[1], grid[2]),
            block_dim: (block, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: every kernel takes (Params, const float*, const float*, const float*, float*),
        // an `ARGS2` kernel one float* more (given as `out2` by its one caller), and bounds its
        // accesses by the parameters, which the callers derive from checked shapes.
        unsafe { b.launch(cfg) }.map_err(|e| driver_err(&format!("launching {entry}"), e))?;
        Ok(())
    }

    /// One 256-thread block per 256 elements (1-D).
    pub fn grid(n: usize) -> [u32; 3] {
        [n.div_ceil(256).max(1) as u32, 1, 1]
    }
}
