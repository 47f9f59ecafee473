//! Dispatches recorded into one command encoder and submitted together: a submission costs the
//! host tens of microseconds on a hardware adapter (NVIDIA's Vulkan on an H200: a ResNet-50
//! forward was issued after 5.0 ms and finished after 5.35 ms when each dispatch was submitted
//! alone, docs/PERFORMANCE.md). Each dispatch of a batch reads its parameters from its own slot
//! of a uniform ring; the slots are kept on the host and written with one `Queue::write_buffer`
//! just before the submission (a staged write lands before the submission's commands, so one
//! shared block would give every dispatch the last parameters). The batch is submitted when its
//! slots are used up, before any other write to a buffer (a staged write would land before the
//! dispatches recorded ahead of it), with a readback's copy, and before a wait. A batch never
//! submitted (its backend dropped first) is discarded: nothing can read its results.

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
    stride: usize,
    slots: usize,
    /// The recorded dispatches' parameter blocks, at their slots' offsets (`stride` apart).
    staged: Vec<u8>,
    encoder: Option<wgpu::CommandEncoder>,
}

impl Batch {
    /// A batch of at most `slots` dispatches on `device`.
    pub(crate) fn new(device: &wgpu::Device, limits: &wgpu::Limits, slots: usize) -> Self {
        let size = std::mem::size_of::<Params>();
        let align = (limits.min_uniform_buffer_offset_alignment as usize).max(1);
        let stride = size.div_ceil(align) * align;
        let slots = slots.max(1);
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: (stride * slots) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Batch {
            uniform,
            stride,
            slots,
            staged: Vec::with_capacity(stride * slots),
            encoder: None,
        }
    }

    /// Keeps `params` for the next free slot and returns that slot's binding.
    pub(crate) fn params(&mut self, params: &Params) -> wgpu::BindingResource<'_> {
        let offset = self.staged.len();
        self.staged.extend_from_slice(bytemuck::bytes_of(params));
        self.staged.resize(offset + self.stride, 0);
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.uniform,
            offset: offset as u64,
            size: std::num::NonZeroU64::new(std::mem::size_of::<Params>() as u64),
        })
    }

    /// The encoder the batch records into.
    pub(crate) fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
        })
    }

    /// Counts the dispatch recorded with the last slot kept; submits when the slots are used
    /// up.
    pub(crate) fn recorded(&mut self, queue: &wgpu::Queue) {
        if self.staged.len() == self.slots * self.stride {
            self.submit(queue);
        }
    }

    /// Submits what was recorded (nothing when empty) and frees the slots.
    pub(crate) fn submit(&mut self, queue: &wgpu::Queue) {
        if let Some(enc) = self.encoder.take() {
            self.write_params(queue);
            queue.submit([enc.finish()]);
        }
        self.staged.clear();
    }

    /// Records `more` (a readback's copy) after the recorded dispatches and submits them all.
    pub(crate) fn submit_with(
        &mut self,
        queue: &wgpu::Queue,
        device: &wgpu::Device,
        more: impl FnOnce(&mut wgpu::CommandEncoder),
    ) {
        more(self.encoder(device));
        self.submit(queue);
    }

    /// The kept parameter blocks into their slots, staged to land before the next submission's
    /// commands.
    fn write_params(&self, queue: &wgpu::Queue) {
        if !self.staged.is_empty() {
            queue.write_buffer(&self.uniform, 0, &self.staged);
        }
    }
}
