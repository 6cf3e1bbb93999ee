//! Generates `assets.rs`: one `Asset` per file under `$TIDINGS_SITE_DIR` (the built site).
//! A missing variable or folder is a compile error that says how to build the site first.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=TIDINGS_SITE_DIR");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("assets.rs");
    let code = match std::env::var("TIDINGS_SITE_DIR") {
        Ok(dir) if Path::new(&dir).join("pkg").is_dir() => table(Path::new(&dir)),
        Ok(dir) => refuse(&format!(
            "TIDINGS_SITE_DIR={dir} holds no built site (no pkg/ folder): run `cargo run -p sitebuild -- --release` first"
        )),
        Err(_) => refuse(
            "the `embed-site` feature needs TIDINGS_SITE_DIR pointing at the built site: \
             run `cargo run -p sitebuild -- --release`, then build with \
             TIDINGS_SITE_DIR=target/site (scripts/run does both)",
        ),
    };
    std::fs::write(out, code).unwrap();
}

fn refuse(message: &str) -> String {
    format!("compile_error!({message:?});\npub static ASSETS: &[Asset] = &[];\n")
}

fn table(root: &Path) -> String {
    let root = root.canonicalize().unwrap();
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for file in files {
        // Precompressed siblings travel with their file, not as files of their own.
        if file.extension().is_some_and(|e| e == "gz") {
            continue;
        }
        let rel = file.strip_prefix(&root).unwrap();
        let path = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let body = std::fs::read(&file).unwrap();
        let gz = PathBuf::from(format!("{}.gz", file.display()));
        let gzip = if gz.is_file() {
            format!("Some(include_bytes!({:?}))", gz.display().to_string())
        } else {
            "None".into()
        };
        writeln!(
            code,
            "    Asset {{ path: {path:?}, body: include_bytes!({:?}), gzip: {gzip}, etag: \"\\\"{:016x}\\\"\" }},",
            file.display().to_string(),
            fnv1a(&body)
        )
        .unwrap();
    }
    code.push_str("];\n");
    code
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    // A new or removed file changes its folder's mtime; changed contents are tracked by
    // include_bytes! itself.
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// FNV-1a, 64 bits: stable across Rust versions (unlike `DefaultHasher`), enough for an ETag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}
