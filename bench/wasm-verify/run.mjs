// Runs a wasm32-wasip1 program under node's WASI, that is in V8, the engine Envoy embeds for
// proxy-wasm filters. Used for filter/core/examples/verify_bench.rs (`just bench-verify`):
//
//   cargo build --release --target wasm32-wasip1 -p oidc-gate-core --example verify_bench
//   node bench/wasm-verify/run.mjs target/wasm32-wasip1/release/examples/verify_bench.wasm [N]
//
// Arguments after the module are passed to the program. Node prints an ExperimentalWarning for
// node:wasi; it goes to stderr.
import { readFile } from "node:fs/promises";
import { argv, exit } from "node:process";
import { WASI } from "node:wasi";

const [module, ...args] = argv.slice(2);
if (!module) {
  console.error("usage: node run.mjs <program.wasm> [args...]");
  exit(2);
}
const wasi = new WASI({ version: "preview1", args: [module, ...args], env: {}, returnOnExit: true });
const compiled = await WebAssembly.compile(await readFile(module));
const instance = await WebAssembly.instantiate(compiled, wasi.getImportObject());
exit(wasi.start(instance));
