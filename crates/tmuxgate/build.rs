//! Embeds the built web UI (`web/dist`, produced by `npm run build` in `web/` and committed)
//! into the binary: every file becomes an entry of a static table with its content type, an
//! ETag and, where it pays, a gzip copy compressed once here instead of on every request.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Files smaller than this are served uncompressed (gzip's framing would eat the gain).
const GZIP_MIN_BYTES: usize = 512;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = manifest.join("../../web/dist");
    println!("cargo::rerun-if-changed={}", dist.display());
    if !dist.join("index.html").is_file() {
        panic!(
            "the web UI is not built: {} has no index.html. Build it with \
             `npm --prefix web ci && npm --prefix web run build` (web/dist is normally committed)",
            dist.display()
        );
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let mut files = Vec::new();
    collect(&dist, &mut files);
    // Sorted by URL, the order `web::find` binary-searches (a `PathBuf` sorts by components,
    // which differs: `/a/b` < `/a.txt` by path, `/a.txt` < `/a/b` by string).
    let mut files: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|file| {
            let rel = file.strip_prefix(&dist).expect("under dist");
            (
                format!("/{}", rel.to_string_lossy().replace('\\', "/")),
                file,
            )
        })
        .collect();
    files.sort();
    let mut table = String::from("&[\n");
    for (url, file) in &files {
        let rel = file.strip_prefix(&dist).expect("under dist");
        let body = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let gzip = gzip(&body, content_type(file), &out, rel);
        let hash = fnv1a(&body);
        writeln!(
            table,
            "    Asset {{ path: {url:?}, content_type: {:?}, etag: \"\\\"{hash:016x}\\\"\", \
             gzip_etag: \"\\\"{hash:016x}-gz\\\"\", immutable: {}, body: include_bytes!({:?}), \
             gzip: {} }},",
            content_type(file),
            url.starts_with("/assets/"),
            file.canonicalize().expect("exists"),
            match gzip {
                Some(path) => format!("Some(include_bytes!({path:?}))"),
                None => "None".to_owned(),
            },
        )
        .expect("writing to a String");
    }
    table.push(']');
    std::fs::write(out.join("web_assets.rs"), table).expect("writing web_assets.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("readable directory entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The gzip copy's path, when the type compresses and the result is smaller.
fn gzip(body: &[u8], content_type: &str, out: &Path, rel: &Path) -> Option<PathBuf> {
    let textual = content_type.starts_with("text/")
        || content_type.starts_with("application/javascript")
        || content_type.starts_with("application/json")
        || content_type.starts_with("image/svg");
    if !textual || body.len() < GZIP_MIN_BYTES {
        return None;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).expect("in memory");
    let packed = encoder.finish().expect("in memory");
    if packed.len() >= body.len() {
        return None;
    }
    let path = out.join("web").join(format!("{}.gz", rel.display()));
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("creating OUT_DIR/web");
    std::fs::write(&path, packed).expect("writing a gzip copy");
    Some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "application/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// FNV-1a, 64 bits: a stable content hash for ETags (not a security property).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
