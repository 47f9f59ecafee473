//! Adapter and device selection, the pipeline cache, buffer allocation, dispatch and readback.

use crate::batch::{batch_from_env, Batch};
use crate::pool::{bucket, GpuBuffer, Pool, Storage};
use crate::shaders;
use gradcam_core::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Which adapter to use.
#[derive(Clone, Debug, Default)]
pub struct AdapterChoice {
    /// An adapter whose name contains this text (case-insensitive); `None` reads
    /// `WGPU_ADAPTER_NAME`, and without it takes the default high-performance adapter.
    pub name: Option<String>,
}

/// Entry points that read their first two inputs through the vec4 views at bindings 5 and 6.
const VEC4_ENTRIES: &[&str] = &["gemm", "conv_forward"];

/// Parameters of one dispatch, laid out as the shaders' `Params` block.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Params {
    pub a: [u32; 4],
    pub b: [u32; 4],
    pub c: [u32; 4],
    pub d: [u32; 4],
    pub f: [f32; 4],
}

/// The device, its queue, the caches, and the errors wgpu reported asynchronously.
pub(crate) struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pipelines: Mutex<HashMap<(&'static str, &'static str), Arc<wgpu::ComputePipeline>>>,
    pub pool: Arc<Pool>,
    /// Dispatches recorded and not yet submitted, with their parameter slots (`batch.rs`).
    batch: Mutex<Batch>,
    /// Mappable readback buffers by size, reused.
    staging: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    /// Device buffers created so far (storage and readback): flat once the pools are warm.
    pub allocations: std::sync::atomic::AtomicUsize,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
}

fn backend_err(msg: impl Into<String>) -> Error {
    Error::Backend {
        backend: "wgpu".into(),
        msg: msg.into(),
    }
}

impl Context {
    /// Opens the chosen adapter with its own limits (not wgpu's conservative defaults).
    pub fn new(choice: &AdapterChoice) -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let wanted = choice
            .name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|s| !s.is_empty());
        let adapter = match &wanted {
            Some(name) => {
                let adapters =
                    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                adapters
                    .into_iter()
                    .find(|a| {
                        a.get_info()
                            .name
                            .to_lowercase()
                            .contains(&name.to_lowercase())
                    })
                    .ok_or_else(|| {
                        backend_err(format!(
                            "no WebGPU adapter named like `{name}`; found: {}",
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        ))
                    })?
            }
            None => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            }))
            .map_err(|e| {
                backend_err(format!(
                    "no WebGPU adapter ({e}); without a GPU, install Mesa's Vulkan drivers \
                     (Debian: mesa-vulkan-drivers) and set WGPU_BACKEND=vulkan"
                ))
            })?,
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gradcam"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| backend_err(format!("cannot open {}: {e}", info.name)))?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().expect("error sink").push(e.to_string());
        }));
        let lost: Arc<Mutex<Option<String>>> = Arc::default();
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            *lost_sink.lock().expect("lost sink") = Some(format!("{reason:?}: {msg}"));
        });
        let batch = Batch::new(&device, &limits, batch_from_env());
        Ok(Context {
            batch: Mutex::new(batch),
            staging: Mutex::default(),
            allocations: Default::default(),
            device,
            queue,
            info,
            limits,
            pipelines: Mutex::default(),
            pool: Pool::new(1 << 30),
            errors,
            lost,
        })
    }

    /// The first error wgpu reported since the last check, or a lost device.
    pub fn check(&self) -> Result<()> {
        if let Some(l) = self.lost.lock().expect("lost").clone() {
            return Err(backend_err(format!("device lost ({l})")));
        }
        let mut e = self.errors.lock().expect("errors");
        if !e.is_empty() {
            let msg = e.join("; ");
            e.clear();
            return Err(backend_err(msg));
        }
        Ok(())
    }

    /// The compiled pipeline of `entry` in shader file `file`; validation errors are returned.
    fn pipeline(
        &self,
        file: &'static str,
        entry: &'static str,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = self
            .pipelines
            .lock()
            .expect("pipelines")
            .get(&(file, entry))
        {
            return Ok(p.clone());
        }
        let src =
            shaders::source(file).ok_or_else(|| backend_err(format!("no shader file {file}")))?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(file),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(backend_err(format!(
                "shader {file}.wgsl, entry {entry}, failed validation: {e}"
            )));
        }
        let p = Arc::new(pipeline);
        self.pipelines
            .lock()
            .expect("pipelines")
            .insert((file, entry), p.clone());
        Ok(p)
    }

    /// A storage buffer for `len` f32 values, from the pool when one is free.
    pub fn alloc(&self, len: usize) -> Result<GpuBuffer> {
        let bytes = (len as u64).max(1) * 4;
        let largest = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        if bytes > largest {
            return Err(backend_err(format!(
                "a tensor of {len} values ({bytes} bytes) exceeds the adapter's largest buffer binding \
                 ({} bytes on {}): the model is too large for this adapter",
                largest, self.info.name
            )));
        }
        let size = bucket(bytes);
        if let Some(b) = self.pool.take(size) {
            return Ok(self.pool.wrap(b));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        self.allocations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(backend_err(format!(
                "out of device memory allocating {bytes} bytes: {e}"
            )));
        }
        Ok(self.pool.wrap(buffer))
    }

    /// Values that fit one storage binding.
    pub fn largest_binding(&self) -> usize {
        (self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            / 4) as usize
    }

    /// Storage holding `data`, split into whole rows of `row` values across several buffers when
    /// it exceeds the largest storage binding.
    pub fn upload_rows(&self, data: &[f32], row: usize) -> Result<Storage> {
        let largest = self.largest_binding();
        if data.len() <= largest {
            return Ok(Storage {
                parts: vec![self.upload(data)?],
                part_len: data.len().max(1),
            });
        }
        let part_len = largest / row.max(1) * row.max(1);
        if part_len == 0 {
            return Err(backend_err(format!(
                "one row of {row} values exceeds the adapter's largest storage binding ({largest} values on {})",
                self.info.name
            )));
        }
        let parts = data
            .chunks(part_len)
            .map(|c| self.upload(c))
            .collect::<Result<Vec<_>>>()?;
        Ok(Storage { parts, part_len })
    }

    /// A buffer holding `data`.
    pub fn upload(&self, data: &[f32]) -> Result<GpuBuffer> {
        let b = self.alloc(data.len())?;
        if !data.is_empty() {
            // The buffer may have been a dropped tensor's that a recorded dispatch still reads:
            // the staged write must land after those dispatches, so they are submitted first
            // (no dispatch recorded later can read this buffer before it is returned).
            self.submit();
            self.queue
                .write_buffer(b.raw(), 0, bytemuck::cast_slice(data));
        }
        Ok(b)
    }

    /// Runs `entry` of `file` over `groups` workgroups, binding `params` at 0, `inputs` at 1..
    /// and `out` at 4.
    pub fn dispatch(
        &self,
        file: &'static str,
        entry: &'static str,
        params: Params,
        inputs: &[&GpuBuffer],
        out: &GpuBuffer,
        groups: [u32; 3],
    ) -> Result<()> {
        let pipeline = self.pipeline(file, entry)?;
        // Checked here, not by wgpu: an invalid dispatch would void its whole batch.
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(backend_err(format!(
                "{entry}: {groups:?} workgroups exceed the adapter's {max} per dimension"
            )));
        }
        let mut batch = self.batch.lock().expect("batch lock");
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: batch.params(&params),
        }];
        for (i, b) in inputs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: 1 + i as u32,
                resource: b.raw().as_entire_binding(),
            });
        }
        entries.push(wgpu::BindGroupEntry {
            binding: 4,
            resource: out.raw().as_entire_binding(),
        });
        // The tiled GEMMs also read their first two inputs as vec4s (common.wgsl).
        if VEC4_ENTRIES.contains(&entry) {
            for (i, b) in inputs.iter().take(2).enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: 5 + i as u32,
                    resource: b.raw().as_entire_binding(),
                });
            }
        }
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        drop(entries);
        {
            let mut pass =
                batch
                    .encoder(&self.device)
                    .begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(entry),
                        timestamp_writes: None,
                    });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        batch.recorded(&self.queue);
        Ok(())
    }

    /// Submits the recorded dispatches (before a wait for the device or a write to a buffer).
    pub fn submit(&self) {
        self.batch.lock().expect("batch lock").submit(&self.queue);
    }

    /// Workgroups covering `n` invocations of a 256-wide 1-D kernel, on a 2-D grid when `n` is
    /// beyond one dimension's limit (the shaders' `flat` index).
    pub fn grid(&self, n: usize) -> [u32; 3] {
        let wg = n.div_ceil(256).max(1) as u64;
        let max = self.limits.max_compute_workgroups_per_dimension.max(1) as u64;
        let x = wg.min(max);
        [x as u32, wg.div_ceil(x) as u32, 1]
    }

    /// Copies a tensor's `len` values to the host, part by part.
    pub fn download_storage(&self, s: &Storage, len: usize) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(len);
        for b in &s.parts {
            let n = s.part_len.min(len - out.len());
            out.extend(self.download(b, n)?);
        }
        Ok(out)
    }

    /// Copies a buffer's first `len` values to the host.
    pub fn download(&self, b: &GpuBuffer, len: usize) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(vec![]);
        }
        let bytes = len as u64 * 4;
        let size = bucket(bytes);
        let reused = self
            .staging
            .lock()
            .expect("staging")
            .get_mut(&size)
            .and_then(|v| v.pop());
        let staging = reused.unwrap_or_else(|| {
            self.allocations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        // The copy goes after the recorded dispatches, in the same submission.
        self.batch
            .lock()
            .expect("batch lock")
            .submit_with(&self.queue, &self.device, |enc| {
                enc.copy_buffer_to_buffer(b.raw(), 0, &staging, 0, Some(bytes))
            });
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| backend_err(format!("waiting for the device: {e}")))?;
        rx.recv()
            .map_err(|_| backend_err("readback never completed"))?
            .map_err(|e| backend_err(format!("readback failed: {e}")))?;
        self.check()?;
        let view = staging
            .get_mapped_range(..bytes)
            .map_err(|e| backend_err(format!("readback mapping failed: {e}")))?;
        let out = bytemuck::cast_slice::<u8, f32>(&view).to_vec();
        drop(view);
        staging.unmap();
        self.staging
            .lock()
            .expect("staging")
            .entry(size)
            .or_default()
            .push(staging);
        Ok(out)
    }
}
