//! The built site (what `cargo run -p sitebuild` writes: `pkg/tidings.js`, `pkg/tidings_bg.wasm`,
//! `pkg/tidings.css`, the favicons) as static bytes, so a release `tidings` is one file.
//!
//! `build.rs` reads the folder named by `TIDINGS_SITE_DIR` at compile time and generates the
//! table below with `include_bytes!`; a file's `.gz` sibling, when the site build wrote one,
//! becomes its precompressed body. Only the server's `embed-site` feature pulls this crate in, so
//! ordinary debug builds and `cargo test -p server` never need a built site.

/// One file of the site.
#[derive(Debug)]
pub struct Asset {
    /// The URL path without its leading slash, e.g. `pkg/tidings.js`.
    pub path: &'static str,
    pub body: &'static [u8],
    /// The same bytes gzip-compressed at build time, when that made them smaller.
    pub gzip: Option<&'static [u8]>,
    /// A strong validator: a hash of `body`, quoted as HTTP wants it.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The embedded file at `path` (no leading slash), if there is one.
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
