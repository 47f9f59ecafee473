//! Every WGSL file parses and validates with naga (the version wgpu uses), without a device,
//! and translates to Metal and HLSL as wgpu's Metal and DX12 backends would (CI runs the shaders
//! only through SPIR-V, on llvmpipe).

#[test]
fn every_shader_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
    let common = std::fs::read_to_string(dir.join("common.wgsl")).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl") && !p.ends_with("common.wgsl"))
        .collect();
    files.sort();
    // Every file on disk is embedded in the backend, and the other way round.
    let embedded: Vec<&str> = gradcam_wgpu::SHADERS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        files.len(),
        embedded.len(),
        "shaders/ and SHADERS disagree: {files:?} vs {embedded:?}"
    );
    for path in &files {
        let name = path.file_stem().unwrap().to_str().unwrap();
        assert!(embedded.contains(&name), "{name}.wgsl is not embedded");
        let src = format!("{common}\n{}", std::fs::read_to_string(path).unwrap());
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}.wgsl: {e:?}"));
        let (msl, _) = naga::back::msl::write_string(
            &module,
            &info,
            &naga::back::msl::Options::default(),
            &naga::back::msl::PipelineOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{name}.wgsl to Metal: {e:?}"));
        let mut hlsl = String::new();
        let (options, pipeline) = (
            naga::back::hlsl::Options::default(),
            naga::back::hlsl::PipelineOptions::default(),
        );
        naga::back::hlsl::Writer::new(&mut hlsl, &options, &pipeline)
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{name}.wgsl to HLSL: {e:?}"));
        for e in &module.entry_points {
            assert!(
                msl.contains(&e.name) && hlsl.contains(&e.name),
                "{name}.wgsl: {} missing from the Metal or HLSL output",
                e.name
            );
        }
        assert!(module
            .entry_points
            .iter()
            .all(|e| e.stage == naga::ShaderStage::Compute));
    }
}
