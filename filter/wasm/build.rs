//! Link options for the release Wasm module: `--compress-relocations` makes wasm-ld write the call
//! targets and memory addresses in the code section in their shortest LEB128 form instead of the
//! padded five bytes it otherwise leaves for relocation. The code is the same; the module is
//! about 80 KB smaller. wasm-ld accepts it only without DWARF, so it comes with `--strip-debug`
//! (which keeps the name section of an unstripped build, e.g. for twiggy), and only when the
//! profile asks for no debug information (the release profile).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32");
    let no_debug_info = std::env::var("DEBUG").as_deref() == Ok("false");
    if wasm && no_debug_info {
        println!("cargo:rustc-link-arg-cdylib=--strip-debug");
        println!("cargo:rustc-link-arg-cdylib=--compress-relocations");
    }
}
