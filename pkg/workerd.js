// Cloudflare Workers entry: workerd hands over the imported .wasm as a compiled
// WebAssembly.Module, which is instantiated synchronously (Workers forbid compiling
// wasm from bytes at run time). The runtime name turns on the cap of 6 open
// requests per invocation.
import wasmModule from './wasm/parallel_task_executor_bg.wasm';
import {initSync, setRuntime} from './wasm/parallel_task_executor.js';

initSync({module: wasmModule});
setRuntime('workerd');

export * from './core.js';
