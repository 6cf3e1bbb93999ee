//! `cargo run -p sitebuild [-- --release] [--site DIR]`: builds the browser half of Tidings into
//! the site folder the server serves (default `target/site`), the same layout cargo-leptos wrote:
//!
//! ```text
//! pkg/tidings.js        wasm-bindgen's JS glue (ES module, "web" target)
//! pkg/tidings_bg.wasm   the `frontend` crate, hydrate build (wasm-opt -Oz in release)
//! pkg/tidings.css       style/main.css
//! favicon*.svg          everything under public/
//! *.gz                  gzip siblings of the compressible files (served precompressed)
//! ```
//!
//! It exists so that running and testing Tidings needs no cargo-leptos (≈19 min to compile) and
//! no wasm-bindgen CLI (≈10 min): the bindings come from the `wasm-bindgen-cli-support` crate
//! pinned to exactly the `wasm-bindgen` version locked for `frontend` (checked below against
//! Cargo.lock), and wasm-opt is npm's binaryen from `end2end/node_modules` (Debian's is too old:
//! its output does not hydrate). `cargo leptos watch` stays the development loop.
//!
//! The names match what the server's `<HydrationScripts>` asks for when the server is built by
//! plain cargo: `/pkg/tidings.js` and `/pkg/tidings_bg.wasm` (cargo-leptos renames the wasm to
//! `tidings.wasm` and compiles the server with `LEPTOS_OUTPUT_NAME`, which switches leptos to that
//! name). Files are only rewritten when their bytes change, so an embedding server build
//! (`TIDINGS_SITE_DIR`) recompiles only when the site really changed.

use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The name cargo-leptos used (`name` in `[[workspace.metadata.leptos]]`).
const OUTPUT_NAME: &str = "tidings";
/// The crate whose `cdylib` is the browser app.
const FRONTEND: &str = "frontend";

fn main() -> Result<()> {
    let args = Args::parse()?;
    // `cargo run` says where the package is now; the path compiled in is only a fallback. A
    // target directory reused by another checkout (CI's warm cache) would otherwise build the
    // site from the checkout that first compiled this tool.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let workspace = manifest_dir
        .parent()
        .context("sitebuild lives inside the workspace")?
        .to_path_buf();
    check_bindgen_version(&workspace)?;
    let site = args.site.unwrap_or_else(|| workspace.join("target/site"));
    let profile = if args.release {
        "wasm-release"
    } else {
        "debug"
    };

    let wasm = build_frontend(&workspace, args.release)?;
    let mut files = bindgen(&wasm)?;
    if args.release {
        let bg = format!("pkg/{OUTPUT_NAME}_bg.wasm");
        let optimized = wasm_opt(&workspace, &files[&bg])?;
        files.insert(bg, optimized);
    }
    files.insert(
        format!("pkg/{OUTPUT_NAME}.css"),
        read(&workspace.join("style/main.css"))?,
    );
    collect(&workspace.join("public"), "", &mut files)?;
    precompress(&mut files, args.release)?;
    let changed = write_site(&site, &files)?;
    eprintln!(
        "sitebuild: {profile} site in {} ({} files, {changed} changed; wasm {} KiB)",
        site.display(),
        files.len(),
        files[&format!("pkg/{OUTPUT_NAME}_bg.wasm")].len() / 1024
    );
    Ok(())
}

struct Args {
    release: bool,
    site: Option<PathBuf>,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut args = Args {
            release: false,
            site: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--release" => args.release = true,
                "--site" => args.site = Some(it.next().context("--site needs a folder")?.into()),
                "-h" | "--help" => {
                    println!(
                        "usage: cargo run -p sitebuild -- [--release] [--site DIR]\n\
                         Builds the browser site into DIR (default target/site): debug WASM, or \
                         with --release the wasm-release profile and wasm-opt -Oz."
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?} (try --help)"),
            }
        }
        Ok(args)
    }
}

/// Refuses to run when Cargo.lock holds different versions of the library and of the
/// bindings generator: their output would not fit together (the browser fails at start-up).
fn check_bindgen_version(workspace: &Path) -> Result<()> {
    let lock =
        std::fs::read_to_string(workspace.join("Cargo.lock")).context("reading Cargo.lock")?;
    let version = |name: &str| -> Option<String> {
        let mut lines = lock.lines();
        while let Some(line) = lines.next() {
            if line == format!("name = \"{name}\"") {
                return lines
                    .next()?
                    .strip_prefix("version = \"")?
                    .strip_suffix('"')
                    .map(str::to_owned);
            }
        }
        None
    };
    let library = version("wasm-bindgen").context("Cargo.lock has no wasm-bindgen")?;
    let generator = version("wasm-bindgen-cli-support")
        .context("Cargo.lock has no wasm-bindgen-cli-support")?;
    ensure!(
        library == generator,
        "Cargo.lock locks wasm-bindgen {library} but wasm-bindgen-cli-support {generator}: pin both \
         to the same version in the workspace Cargo.toml"
    );
    Ok(())
}

/// `cargo build -p frontend --target wasm32-unknown-unknown`, returning the `.wasm` it wrote.
fn build_frontend(workspace: &Path, release: bool) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build.current_dir(workspace).args([
        "build",
        "-p",
        FRONTEND,
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
    ]);
    if release {
        build.args(["--profile", "wasm-release"]);
    }
    // What cargo-leptos sets for its own builds would change how leptos names the files: the
    // site must match a server built by plain cargo.
    for var in [
        "LEPTOS_OUTPUT_NAME",
        "LEPTOS_SITE_ROOT",
        "LEPTOS_SITE_PKG_DIR",
    ] {
        build.env_remove(var);
    }
    let status = build.status().with_context(|| format!("running {cargo}"))?;
    ensure!(
        status.success(),
        "building the frontend for wasm32-unknown-unknown failed (is the target installed? \
         `rustup target add wasm32-unknown-unknown`)"
    );
    let metadata = Command::new(&cargo)
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    ensure!(metadata.status.success(), "cargo metadata failed");
    let metadata: serde_json::Value = serde_json::from_slice(&metadata.stdout)?;
    let target = metadata["target_directory"]
        .as_str()
        .context("cargo metadata names no target directory")?;
    Ok(Path::new(target)
        .join("wasm32-unknown-unknown")
        .join(if release { "wasm-release" } else { "debug" })
        .join(format!("{FRONTEND}.wasm")))
}

/// The JS glue and the processed WASM (plus any JS snippets), keyed by their site path.
fn bindgen(wasm: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let out = std::env::temp_dir().join(format!("tidings-sitebuild-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let result = (|| -> Result<BTreeMap<String, Vec<u8>>> {
        wasm_bindgen_cli_support::Bindgen::new()
            .input_path(wasm)
            .out_name(OUTPUT_NAME)
            .web(true)?
            .typescript(false)
            .keep_debug(false)
            .generate(&out)?;
        let mut files = BTreeMap::new();
        collect(&out, "pkg/", &mut files)?;
        Ok(files)
    })();
    let _ = std::fs::remove_dir_all(&out);
    result.with_context(|| format!("generating the JS bindings for {}", wasm.display()))
}

/// npm binaryen's `wasm-opt -Oz`, from end2end/node_modules (scripts/lib.sh installs it).
fn wasm_opt(workspace: &Path, wasm: &[u8]) -> Result<Vec<u8>> {
    let local = workspace.join("end2end/node_modules/.bin/wasm-opt");
    let tool = if local.exists() {
        local
    } else {
        PathBuf::from("wasm-opt")
    };
    let dir = std::env::temp_dir().join(format!("tidings-wasm-opt-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (input, output) = (dir.join("in.wasm"), dir.join("out.wasm"));
    std::fs::write(&input, wasm)?;
    let status = Command::new(&tool)
        .arg("-Oz")
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .status();
    let result = match status {
        Ok(s) if s.success() => read(&output),
        Ok(s) => Err(anyhow::anyhow!("{} -Oz failed ({s})", tool.display())),
        Err(e) => Err(anyhow::anyhow!(
            "could not run wasm-opt ({e}): install npm's binaryen with `npm ci` in end2end/ \
             (Debian's binaryen is too old: its output does not hydrate)"
        )),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Adds every file under `dir` to `files`, keyed by `prefix` + its relative path.
fn collect(dir: &Path, prefix: &str, files: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            collect(&path, &format!("{prefix}{name}/"), files)?;
        } else {
            files.insert(format!("{prefix}{name}"), read(&path)?);
        }
    }
    Ok(())
}

/// Adds a `.gz` sibling for each text or WASM file that compresses: the server sends it to
/// clients that accept gzip, so nothing is compressed per request. Release builds take the
/// best compression; debug builds (a 12 MB WASM) the fast one.
fn precompress(files: &mut BTreeMap<String, Vec<u8>>, release: bool) -> Result<()> {
    let level = if release {
        flate2::Compression::best()
    } else {
        flate2::Compression::fast()
    };
    let compressible = [".js", ".wasm", ".css", ".svg", ".html", ".json", ".txt"];
    let mut gzipped = Vec::new();
    for (path, bytes) in files.iter() {
        if bytes.len() < 1024 || !compressible.iter().any(|ext| path.ends_with(ext)) {
            continue;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
        gz.write_all(bytes)?;
        let gz = gz.finish()?;
        if gz.len() < bytes.len() {
            gzipped.push((format!("{path}.gz"), gz));
        }
    }
    files.extend(gzipped);
    Ok(())
}

/// Makes `site` hold exactly `files`: writes those whose bytes differ, removes the rest.
/// Returns how many were written.
fn write_site(site: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<usize> {
    let mut changed = 0;
    for (path, bytes) in files {
        let target = site.join(path);
        if std::fs::read(&target).ok().as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        std::fs::create_dir_all(target.parent().unwrap())?;
        std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
        changed += 1;
    }
    let mut existing = BTreeMap::new();
    if site.exists() {
        collect(site, "", &mut existing)?;
    }
    for stale in existing.keys().filter(|p| !files.contains_key(*p)) {
        std::fs::remove_file(site.join(stale))?;
    }
    Ok(changed)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
