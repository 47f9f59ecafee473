// The Grad-CAM reductions: gradient GAP, weighted and elementwise channel sums, and the
// Grad-CAM++ and XGradCAM channel weights.

// Mean of each plane; a = (planes, plane).
@compute @workgroup_size(256)
fn gradient_gap(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    var s = 0.0;
    for (var j = 0u; j < p.a.y; j = j + 1u) { s = s + src0[i * p.a.y + j]; }
    dst[i] = s * (1.0 / f32(p.a.y));
}

// Σ dy·a over each plane (the gradient of a broadcast product's factor); src0 = dy, src1 = a;
// a = (planes, plane).
@compute @workgroup_size(256)
fn mul_plane_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    var s = 0.0;
    for (var j = 0u; j < p.a.y; j = j + 1u) { s = s + src0[i * p.a.y + j] * src1[i * p.a.y + j]; }
    dst[i] = s;
}

// Σₖ w[n,k]·a[n,k,·], rectified when a.w = 1: src0 = a, src1 = w; a = (n·plane, k, plane, relu).
@compute @workgroup_size(256)
fn weighted_channel_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let K = p.a.y; let P = p.a.z;
    let n = i / P; let q = i % P;
    var s = 0.0;
    for (var k = 0u; k < K; k = k + 1u) { s = s + src1[n * K + k] * src0[(n * K + k) * P + q]; }
    if (p.a.w == 1u) { s = max(s, 0.0); }
    dst[i] = s;
}

// Σₖ f(g)·a with f = ReLU when a.w = 1: src0 = a, src1 = g; a = (n·plane, k, plane, relu_grad).
@compute @workgroup_size(256)
fn elementwise_channel_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let K = p.a.y; let P = p.a.z;
    let n = i / P; let q = i % P;
    var s = 0.0;
    for (var k = 0u; k < K; k = k + 1u) {
        let j = (n * K + k) * P + q;
        var g = src1[j];
        if (p.a.w == 1u) { g = max(g, 0.0); }
        s = s + g * src0[j];
    }
    dst[i] = s;
}

// Grad-CAM++ weight of each plane; src0 = a, src1 = g; a = (planes, plane).
@compute @workgroup_size(256)
fn gradcampp_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let P = p.a.y; let base = i * P;
    var sa = 0.0;
    for (var j = 0u; j < P; j = j + 1u) { sa = sa + src0[base + j]; }
    var s = 0.0;
    for (var j = 0u; j < P; j = j + 1u) {
        let g = src1[base + j];
        if (g == 0.0) { continue; }
        let g2 = g * g;
        s = s + max(g, 0.0) * (g2 / (g2 + g2 + sa * g2 * g + 1e-6));
    }
    dst[i] = s;
}

// XGradCAM weight of each plane: Σ g·a / (Σ a + 1e-7); src0 = a, src1 = g; a = (planes, plane).
@compute @workgroup_size(256)
fn xgradcam_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat(gid, nwg);
    if (i >= p.a.x) { return; }
    let P = p.a.y; let base = i * P;
    var sa = 0.0;
    for (var j = 0u; j < P; j = j + 1u) { sa = sa + src0[base + j]; }
    var s = 0.0;
    for (var j = 0u; j < P; j = j + 1u) { s = s + src1[base + j] * src0[base + j] / (sa + 1e-7); }
    dst[i] = s;
}
