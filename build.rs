//! Generates the C header from src/ffi with cbindgen into OUT_DIR. The committed copy in
//! include/ is compared with it by tests/header.rs; `make header` refreshes the committed copy
//! (NL_WRITE_HEADER=1 makes this script write it).

use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=NL_WRITE_HEADER");

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap();
    let part = |name: &str| std::env::var(name).unwrap();
    config.after_includes = Some(format!(
        "\n#define NL_VERSION \"{version}\"\n#define NL_VERSION_MAJOR {}\n#define NL_VERSION_MINOR {}\n#define NL_VERSION_PATCH {}\n",
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
