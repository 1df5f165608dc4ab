//! `cargo run -p arch-lint --example check -- <crate>/src`: prints the report (layers and
//! edges between modules) or every violation, for a crate's sources.

fn main() -> std::process::ExitCode {
    let Some(src) = std::env::args_os().nth(1) else {
        eprintln!("usage: check <src dir holding lib.rs>");
        return std::process::ExitCode::FAILURE;
    };
    match arch_lint::check(std::path::PathBuf::from(src)) {
        Ok(report) => {
            print!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(violations) => {
            for violation in &violations {
                println!("{violation}");
            }
            println!("{} violations", violations.len());
            std::process::ExitCode::FAILURE
        }
    }
}
