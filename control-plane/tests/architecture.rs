//! The control plane keeps the layers `src/lib.rs` declares (each layer uses only the layers
//! below it, peers do not use each other) and no file of `src/` reaches itself through imports.

#[test]
fn the_control_plane_keeps_its_declared_layers_and_has_no_import_cycles() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let report = arch_lint::check(src).unwrap_or_else(|violations| {
        let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
        panic!(
            "{} architecture violations:\n{}",
            violations.len(),
            text.join("\n")
        );
    });
    println!("{report}");
    // The layers as lib.rs declares them: a broken `## Layers` section fails here, loudly.
    assert_eq!(
        report.layer_modules(),
        vec![
            vec!["cli", "logging"],
            vec!["server"],
            vec!["api"],
            vec!["admin", "import", "entitlements", "transcode"],
            vec!["keys", "db", "invalidation", "origin"],
            vec!["config", "secrets"],
        ]
    );
}
