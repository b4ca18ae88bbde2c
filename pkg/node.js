// Node entry: reads the .wasm file next to this one and instantiates it
// synchronously. With no top-level await, both `import` and `require` (Node 20.19+
// loads ES modules through `require`) work.
import {readFileSync} from 'node:fs';
import {initSync, setRuntime} from './wasm/parallel_task_executor.js';

initSync({module: readFileSync(new URL('wasm/parallel_task_executor_bg.wasm', import.meta.url))});
setRuntime('node');

export * from './core.js';
