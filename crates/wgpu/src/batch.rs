//! Dispatches recorded into one command encoder and submitted together: a submission costs the
//! host tens of microseconds on a hardware adapter (NVIDIA's Vulkan on an H200: a ResNet-50
//! forward of about 120 dispatches was issued after 5.0 ms and finished after 5.35 ms when each
//! was submitted alone, docs/PERFORMANCE.md). Each dispatch of a batch reads its parameters
//! from its own slot of a uniform ring, written with `Queue::write_buffer` (staged writes land
//! before the submission's commands, so one shared block would give every dispatch the last
//! parameters). The batch is submitted when its slots are used up, before any other write to
//! a buffer (a staged write would land before the dispatches recorded ahead of it), and before
//! a readback or a wait.

use crate::context::Params;

/// Dispatches per submission unless `GRADCAM_WGPU_BATCH` says otherwise: enough to amortise a
/// submission, few enough that the device starts while the host records the rest.
pub(crate) const DEFAULT_BATCH: usize = 32;

/// `GRADCAM_WGPU_BATCH=N` (1–4096; 1 submits every dispatch alone), read once; other values
/// are ignored.
pub(crate) fn batch_from_env() -> usize {
    static BATCH: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BATCH.get_or_init(|| {
        std::env::var("GRADCAM_WGPU_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| (1..=4096).contains(n))
            .unwrap_or(DEFAULT_BATCH)
    })
}

/// The dispatches recorded since the last submission and their parameter slots.
pub(crate) struct Batch {
    /// `slots` parameter blocks, `stride` bytes apart.
    uniform: wgpu::Buffer,
    stride: u64,
    slots: usize,
    /// Slots used by the recorded dispatches.
    used: usize,
    encoder: Option<wgpu::CommandEncoder>,
}

impl Batch {
    /// A batch of at most `slots` dispatches on `device`.
    pub(crate) fn new(device: &wgpu::Device, limits: &wgpu::Limits, slots: usize) -> Self {
        let size = std::mem::size_of::<Params>() as u64;
        let align = u64::from(limits.min_uniform_buffer_offset_alignment.max(1));
        let stride = size.div_ceil(align) * align;
        let slots = slots.max(1);
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: stride * slots as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Batch {
            uniform,
            stride,
            slots,
            used: 0,
            encoder: None,
        }
    }

    /// Writes `params` into the next free slot and returns its binding.
    pub(crate) fn params(
        &mut self,
        queue: &wgpu::Queue,
        params: &Params,
    ) -> wgpu::BindingResource<'_> {
        let offset = self.used as u64 * self.stride;
        queue.write_buffer(&self.uniform, offset, bytemuck::bytes_of(params));
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.uniform,
            offset,
            size: std::num::NonZeroU64::new(std::mem::size_of::<Params>() as u64),
        })
    }

    /// The encoder the batch records into.
    pub(crate) fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        })
    }

    /// Counts a dispatch recorded with the last slot written; submits when the slots are used
    /// up.
    pub(crate) fn recorded(&mut self, queue: &wgpu::Queue) {
        self.used += 1;
        if self.used == self.slots {
            self.submit(queue);
        }
    }

    /// Submits what was recorded (nothing when empty) and frees the slots.
    pub(crate) fn submit(&mut self, queue: &wgpu::Queue) {
        if let Some(enc) = self.encoder.take() {
            queue.submit([enc.finish()]);
        }
        self.used = 0;
    }

    /// The recorded dispatches' encoder, taken to record more (a readback's copy) and submit
    /// at once; the slots are free after that submission.
    pub(crate) fn take_encoder(&mut self, device: &wgpu::Device) -> wgpu::CommandEncoder {
        self.used = 0;
        self.encoder.take().unwrap_or_else(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        })
    }
}
