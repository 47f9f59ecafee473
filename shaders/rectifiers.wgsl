// Rectifiers clamp(x, lo, hi) and their backward in three modes, and the other activations.
// a.x = count, a.y = mode (0 plain, 1 guided, 2 deconvnet); f.x = lo, f.y = hi.

@compute @workgroup_size(256)
fn rectifier_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    dst[i] = min(max(src0[i], p.f.x), p.f.y);
}

// src0 = the forward output y, src1 = dy.
@compute @workgroup_size(256)
fn rectifier_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    dst[i] = rectified_gradient(src0[i], src1[i], p.a.y, p.f.x, p.f.y);
}

// Smooth and piecewise-linear activations and their derivatives (gradcam_core::Activation):
// a.x = count, a.y = kind (0 sigmoid, 1 tanh, 2 leaky ReLU, 3 ELU, 4 hard sigmoid,
// 5 hard swish, 6 reciprocal); f.x = α, f.y = β.
fn act_value(kind: u32, v: f32, al: f32, be: f32) -> f32 {
    switch kind {
        case 0u: { return 1.0 / (1.0 + exp(-v)); }
        case 1u: { return tanh(v); }
        case 2u: { return select(al * v, v, v >= 0.0); }
        case 3u: { return select(al * (exp(v) - 1.0), v, v > 0.0); }
        case 4u: { return clamp(al * v + be, 0.0, 1.0); }
        case 6u: { return 1.0 / v; }
        default: { return v * clamp(v / 6.0 + 0.5, 0.0, 1.0); }
    }
}

fn act_slope(kind: u32, v: f32, al: f32, be: f32) -> f32 {
    switch kind {
        case 0u: {
            let s = 1.0 / (1.0 + exp(-v));
            return s * (1.0 - s);
        }
        case 1u: {
            let t = tanh(v);
            return 1.0 - t * t;
        }
        case 2u: { return select(al, 1.0, v > 0.0); }
        case 3u: { return select(al * exp(v), 1.0, v > 0.0); }
        case 4u: {
            let u = al * v + be;
            return select(0.0, al, u > 0.0 && u < 1.0);
        }
        case 6u: { return -(1.0 / (v * v)); }
        default: {
            if (v < -3.0) { return 0.0; }
            if (v <= 3.0) { return v / 3.0 + 0.5; }
            return 1.0;
        }
    }
}

@compute @workgroup_size(256)
fn activation_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    dst[i] = act_value(p.a.y, src0[i], p.f.x, p.f.y);
}

// src0 = the activation's input x, src1 = dy.
@compute @workgroup_size(256)
fn activation_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    dst[i] = src1[i] * act_slope(p.a.y, src0[i], p.f.x, p.f.y);
}
