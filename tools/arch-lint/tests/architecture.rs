//! arch-lint holds itself to its own rules: the layers its lib.rs declares, no cycles.

#[test]
fn arch_lint_keeps_its_own_layers() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let report = arch_lint::check(src).unwrap_or_else(|violations| {
        let text: Vec<String> = violations.iter().map(ToString::to_string).collect();
        panic!("architecture violations:\n{}", text.join("\n"));
    });
    println!("{report}");
    assert_eq!(
        report.layer_modules(),
        vec![
            vec!["report"],
            vec!["refs"],
            vec!["tree", "layers"],
            vec!["graph", "violation"],
        ]
    );
}
