//! `image` / `push`: the OCI image of `oidc_gate.wasm` in a shape Istio's agent accepts
//! (`shared/istio/NOTES.md` §3), pushed with `oci-client`. The compat variant (default) is a
//! single-platform OCI image whose last layer is a gzip tar holding `plugin.wasm`; the artifact
//! variant has exactly two layers, the raw `.wasm` and its runtime config. Istio checks a
//! WasmPlugin's `sha256` against the manifest digest, which `push` prints.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use flate2::write::GzEncoder;
use flate2::Compression;
use oci_client::client::{ClientConfig, ClientProtocol, Config as OciConfig, ImageLayer};
use oci_client::manifest::{OciImageManifest, OciManifest};
pub use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
pub const WASM_CONTENT: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Compat,
    Artifact,
}

/// An image ready to push: its blobs and its manifest.
pub struct Image {
    pub config: OciConfig,
    pub layers: Vec<ImageLayer>,
    pub manifest: OciImageManifest,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A gzip tar with one file, `plugin.wasm`, byte-for-byte reproducible.
fn plugin_tar(wasm: &[u8]) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_cksum();
    tar.append_data(&mut header, "plugin.wasm", wasm)?;
    let plain = tar.into_inner()?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&plain)?;
    Ok((plain, gz.finish()?))
}

pub fn build(wasm: &[u8], variant: Variant) -> std::io::Result<Image> {
    if wasm.len() < 8 || wasm.get(..4) != Some(b"\0asm") {
        return Err(std::io::Error::other("not a Wasm module (no \\0asm magic)"));
    }
    match variant {
        Variant::Compat => {
            let (plain, gz) = plugin_tar(wasm)?;
            let config = json!({
                "architecture": "wasm",
                "os": "wasip1",
                "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&plain))]},
                "config": {},
            });
            let config = OciConfig::new(config.to_string().into_bytes(), OCI_CONFIG.into(), None);
            let layers = vec![ImageLayer::new(gz, OCI_LAYER_GZIP.into(), None)];
            let annotations = BTreeMap::from([(
                "module.wasm.image/variant".to_string(),
                "compat".to_string(),
            )]);
            let mut manifest = OciImageManifest::build(&layers, &config, Some(annotations));
            manifest.media_type = Some(OCI_MANIFEST.into());
            Ok(Image {
                config,
                layers,
                manifest,
            })
        }
        Variant::Artifact => {
            let runtime =
                json!({"type": "envoy_proxy", "abi_version": "v0.2.1", "config": {"root_ids": []}})
                    .to_string()
                    .into_bytes();
            let config = OciConfig::new(runtime.clone(), WASM_CONFIG.into(), None);
            // Istio's fetcher wants exactly two layers, one of them the module itself.
            let layers = vec![
                ImageLayer::new(wasm.to_vec(), WASM_CONTENT.into(), None),
                ImageLayer::new(runtime, WASM_CONFIG.into(), None),
            ];
            let mut manifest = OciImageManifest::build(&layers, &config, None);
            manifest.media_type = Some(OCI_MANIFEST.into());
            Ok(Image {
                config,
                layers,
                manifest,
            })
        }
    }
}

/// Credentials for a registry from a docker `config.json` (`$DOCKER_CONFIG` or `~/.docker`).
pub fn docker_auth(registry: &str) -> RegistryAuth {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")));
    let Some(text) = dir.and_then(|d| std::fs::read_to_string(d.join("config.json")).ok()) else {
        return RegistryAuth::Anonymous;
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return RegistryAuth::Anonymous;
    };
    let entry = &v["auths"][registry];
    if let (Some(u), Some(p)) = (entry["username"].as_str(), entry["password"].as_str()) {
        return RegistryAuth::Basic(u.into(), p.into());
    }
    let decoded = entry["auth"]
        .as_str()
        .and_then(|a| STANDARD.decode(a).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match decoded.as_deref().and_then(|d| d.split_once(':')) {
        Some((u, p)) => RegistryAuth::Basic(u.into(), p.into()),
        None => RegistryAuth::Anonymous,
    }
}

fn client(plain_http: bool) -> Client {
    Client::new(ClientConfig {
        protocol: if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..ClientConfig::default()
    })
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Pushes the image; returns the manifest digest (`sha256:<hex>`).
pub fn push(
    image: &Image,
    reference: &str,
    auth: &RegistryAuth,
    plain_http: bool,
) -> Result<String, String> {
    let reference: Reference = reference.parse().map_err(|e| format!("{reference}: {e}"))?;
    let client = client(plain_http);
    runtime().map_err(|e| e.to_string())?.block_on(async {
        client
            .push(
                &reference,
                &image.layers,
                image.config.clone(),
                auth,
                Some(image.manifest.clone()),
            )
            .await
            .map_err(|e| format!("push to {reference}: {e}"))?;
        client
            .fetch_manifest_digest(&reference, auth)
            .await
            .map_err(|e| format!("reading back the digest of {reference}: {e}"))
    })
}

/// A pulled image: the manifest as served and every blob it names.
pub struct Pulled {
    pub manifest_bytes: Vec<u8>,
    pub media_type: String,
    pub blobs: BTreeMap<String, Vec<u8>>,
}

/// Pulls a manifest (by tag or `@sha256:` digest) and its blobs.
pub fn pull(reference: &str, auth: &RegistryAuth, plain_http: bool) -> Result<Pulled, String> {
    let reference: Reference = reference.parse().map_err(|e| format!("{reference}: {e}"))?;
    let client = client(plain_http);
    runtime().map_err(|e| e.to_string())?.block_on(async {
        let (bytes, _digest) = client
            .pull_manifest_raw(&reference, auth, &[OCI_MANIFEST, DOCKER_MANIFEST])
            .await
            .map_err(|e| e.to_string())?;
        let manifest: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let parsed: OciManifest = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let OciManifest::Image(image) = parsed else {
            return Err("an index, not an image".to_string());
        };
        let mut blobs = BTreeMap::new();
        for d in image.layers.iter().chain(std::iter::once(&image.config)) {
            let mut out = Vec::new();
            client
                .pull_blob(&reference, d, &mut out)
                .await
                .map_err(|e| e.to_string())?;
            blobs.insert(d.digest.clone(), out);
        }
        Ok(Pulled {
            manifest_bytes: bytes.to_vec(),
            media_type: manifest["mediaType"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            blobs,
        })
    })
}

/// The module Istio's agent would take from this image, applying its fetcher's rules in its
/// order (`pkg/wasm/imagefetcher.go`): Docker image → last layer a Docker gzip tar with
/// `plugin.wasm`; OCI compat → last layer an OCI `tar+gzip` with `plugin.wasm`; OCI artifact →
/// exactly two layers, one the raw Wasm.
pub fn istio_module(pulled: &Pulled) -> Result<Vec<u8>, String> {
    let manifest: Value =
        serde_json::from_slice(&pulled.manifest_bytes).map_err(|e| e.to_string())?;
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let blob = |d: &Value| {
        d["digest"]
            .as_str()
            .and_then(|k| pulled.blobs.get(k))
            .ok_or_else(|| "a layer blob is missing".to_string())
    };
    let from_tar = |gz: &[u8]| -> Result<Vec<u8>, String> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let is_plugin = entry
                .path()
                .ok()
                .and_then(|p| p.file_name().map(|n| n == "plugin.wasm"))
                .unwrap_or(false);
            if is_plugin {
                let mut out = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut out).map_err(|e| e.to_string())?;
                return Ok(out);
            }
        }
        Err("no plugin.wasm in the layer".into())
    };
    let last = layers.last().ok_or("no layers")?;
    let module = if pulled.media_type == DOCKER_MANIFEST {
        if last["mediaType"] != DOCKER_LAYER_GZIP {
            return Err(format!(
                "invalid media type {} (expect {DOCKER_LAYER_GZIP})",
                last["mediaType"]
            ));
        }
        from_tar(blob(last)?)?
    } else if last["mediaType"] == OCI_LAYER_GZIP {
        from_tar(blob(last)?)?
    } else {
        if layers.len() != 2 {
            return Err(format!(
                "number of layers must be 2 but got {}",
                layers.len()
            ));
        }
        let wasm = layers
            .iter()
            .find(|l| l["mediaType"] == WASM_CONTENT)
            .ok_or("no Wasm content layer")?;
        blob(wasm)?.clone()
    };
    if module.len() < 8 || module.get(..4) != Some(b"\0asm") {
        return Err("not a Wasm binary".into());
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &[u8] = b"\0asm\x01\0\0\0 a tiny module";

    fn offline(image: &Image) -> Pulled {
        let manifest = serde_json::to_vec(&image.manifest).unwrap_or_default();
        let mut blobs = BTreeMap::new();
        for l in &image.layers {
            blobs.insert(format!("sha256:{}", sha256_hex(&l.data)), l.data.to_vec());
        }
        Pulled {
            manifest_bytes: manifest,
            media_type: OCI_MANIFEST.into(),
            blobs,
        }
    }

    #[test]
    fn compat_image_is_one_gzip_tar_layer_with_plugin_wasm() {
        let image = build(WASM, Variant::Compat).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(image.layers.len(), 1);
        assert_eq!(image.manifest.layers[0].media_type, OCI_LAYER_GZIP);
        assert_eq!(
            image
                .manifest
                .annotations
                .as_ref()
                .and_then(|a| a.get("module.wasm.image/variant"))
                .map(String::as_str),
            Some("compat")
        );
        assert_eq!(istio_module(&offline(&image)).as_deref(), Ok(WASM));
        // Reproducible: the same module gives the same layer.
        let again = build(WASM, Variant::Compat).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            again.manifest.layers[0].digest,
            image.manifest.layers[0].digest
        );
    }

    #[test]
    fn artifact_image_has_exactly_two_layers_one_the_raw_module() {
        let image = build(WASM, Variant::Artifact).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(image.layers.len(), 2);
        assert_eq!(istio_module(&offline(&image)).as_deref(), Ok(WASM));
        let mut one = offline(&image);
        let mut m: Value = serde_json::from_slice(&one.manifest_bytes).unwrap_or_default();
        if let Some(l) = m["layers"].as_array_mut() {
            l.truncate(1);
        }
        one.manifest_bytes = serde_json::to_vec(&m).unwrap_or_default();
        assert_eq!(
            istio_module(&one).err().as_deref(),
            Some("number of layers must be 2 but got 1")
        );
    }

    #[test]
    fn only_wasm_is_packaged() {
        assert!(build(b"#!/bin/sh\nrm -rf /", Variant::Compat).is_err());
    }
}
