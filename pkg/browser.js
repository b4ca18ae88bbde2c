// Browser entry: fetches and instantiates the .wasm before the import resolves (a
// top-level await), so the synchronous `aggregate` works at once. Bundlers that
// rewrite `new URL(..., import.meta.url)` (Vite, webpack 5, Rollup with a plugin)
// copy the .wasm file; see the README for esbuild.
import init, {setRuntime} from './wasm/parallel_task_executor.js';

await init({module_or_path: new URL('wasm/parallel_task_executor_bg.wasm', import.meta.url)});
setRuntime('browser');

export * from './core.js';
