//! Generates the C header from src/ffi with cbindgen into OUT_DIR (the committed copy in
//! include/ is compared with it by tests/abi.rs; `make header` refreshes it: NL_WRITE_HEADER=1
//! makes this script write it), and computes the source fingerprint the library embeds
//! (`nl_source_fingerprint`), so a prebuilt library can be checked against the tree.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The files the library is built from, relative to the crate, in byte order: the same list
/// `scripts/source-fingerprint` hashes.
fn sources(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p.strip_prefix(root).unwrap().to_str().unwrap().to_owned());
            }
        }
    }
    let mut files = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        "build.rs".to_owned(),
        "cbindgen.toml".to_owned(),
    ];
    walk(root, &root.join("src"), &mut files);
    files.sort();
    files
}

/// SHA-256 over the lines "<sha256 of file>  <path>\n", as `sha256sum` prints them.
fn fingerprint(root: &Path) -> String {
    let mut listing = String::new();
    for f in sources(root) {
        let data = std::fs::read(root.join(&f)).unwrap();
        listing.push_str(&format!("{:x}  {f}\n", Sha256::digest(&data)));
        println!("cargo:rerun-if-changed={f}");
    }
    format!("{:x}", Sha256::digest(listing.as_bytes()))
}

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=NL_WRITE_HEADER");
    println!(
        "cargo:rustc-env=NL_SOURCE_FINGERPRINT={}",
        fingerprint(&crate_dir)
    );

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap();
    let part = |name: &str| std::env::var(name).unwrap();
    config.after_includes = Some(format!(
        "\n#define NL_VERSION \"{version}\"\n#define NL_VERSION_MAJOR {}\n#define NL_VERSION_MINOR {}\n#define NL_VERSION_PATCH {}\n\n\
         // The setting value that switches a timer off (a grace never waits, a timeout never\n\
         // fires); 0 means the default. Same value as `nl_options_set`'s NL_OFF in Rust.\n\
         #define NL_OFF UINT64_MAX\n",
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
    ));

    let generated = out_dir.join("node_lifecycle.h");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(&generated);

    if std::env::var_os("NL_WRITE_HEADER").is_some() {
        let committed = crate_dir.join("include").join("node_lifecycle.h");
        std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
        std::fs::copy(&generated, committed).expect("write include/node_lifecycle.h");
    }
}
