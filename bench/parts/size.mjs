// Part 2: size. The package (its wasm, the wasm-bindgen glue and the JS wrapper)
// against bundles of the smallest one-call program for each peer, each minified
// by esbuild for the browser and gzipped at level 9.
import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {gzipSync} from 'node:zlib';
import * as esbuild from 'esbuild';
import {BENCH_DIR} from '../lib/process.mjs';
import {fmt} from '../lib/stats.mjs';

const FIXTURES = path.join(BENCH_DIR, 'fixtures', 'size');
const TARGET_BYTES = 60 * 1024;
const PROGRAMS = [
	{name: 'package', label: 'parallel-task-executor (complete)', file: 'package.mjs'},
	{name: 'aisdk', label: 'AI SDK (generateText + openai-compatible)', file: 'aisdk.mjs'},
	{name: 'langchain', label: 'LangChain.js (ChatOpenAI.invoke)', file: 'langchain.mjs'},
	{name: 'fetch', label: 'fetch + p-limit', file: 'fetch.mjs'},
];

export const title = '2. Size';

const gzip = bytes => gzipSync(bytes, {level: 9}).length;

async function bundle(entry) {
	const result = await esbuild.build({
		entryPoints: [entry],
		bundle: true,
		minify: true,
		format: 'esm',
		platform: 'browser',
		target: 'es2022',
		write: false,
		logLevel: 'silent',
	});
	return result.outputFiles[0].contents;
}

async function minifyFile(file) {
	const result = await esbuild.transform(readFileSync(file, 'utf8'), {minify: true, format: 'esm', target: 'es2022', loader: 'js'});
	return Buffer.from(result.code);
}

export async function run() {
	// The package's files, found through its package.json like any dependency.
	const require = createRequire(path.join(BENCH_DIR, 'package.json'));
	const packageDir = path.dirname(require.resolve('parallel-task-executor/package.json'));
	const wasm = readFileSync(path.join(packageDir, 'wasm', 'parallel_task_executor_bg.wasm'));
	const glue = await minifyFile(path.join(packageDir, 'wasm', 'parallel_task_executor.js'));
	const wrapperFiles = ['core.js', 'browser.js'];
	const wrapper = Buffer.concat(await Promise.all(wrapperFiles.map(file => minifyFile(path.join(packageDir, file)))));

	const programs = [];
	for (const program of PROGRAMS) {
		const code = await bundle(path.join(FIXTURES, program.file));
		// esbuild leaves the package's .wasm out of the bundle (it is fetched by URL),
		// so it is added to the package's total.
		const extra = program.name === 'package' ? gzip(wasm) : 0;
		programs.push({...program, minifiedBytes: code.length, gzipBytes: gzip(code) + extra, jsGzipBytes: gzip(code)});
	}

	const parts = {
		wasm: {rawBytes: wasm.length, gzipBytes: gzip(wasm)},
		glue: {minifiedBytes: glue.length, gzipBytes: gzip(glue)},
		wrapper: {minifiedBytes: wrapper.length, gzipBytes: gzip(wrapper), files: wrapperFiles},
	};
	const total = parts.wasm.gzipBytes + parts.glue.gzipBytes + parts.wrapper.gzipBytes;
	return {parts, total, targetBytes: TARGET_BYTES, targetMet: total < TARGET_BYTES, programs};
}

const kb = bytes => `${fmt(bytes / 1024)} KB`;

export function render(result) {
	const {parts, programs} = result;
	const ours = programs.find(program => program.name === 'package');
	const lines = [
		'Minified by esbuild (browser platform, ES2022) and gzipped at level 9; 1 KB = 1,024 bytes. The package\'s parts are gzipped one by one.',
		'',
		'| package part | raw or minified | gzipped |',
		'|---|---|---|',
		`| wasm (\`parallel_task_executor_bg.wasm\`) | ${kb(parts.wasm.rawBytes)} | ${kb(parts.wasm.gzipBytes)} |`,
		`| wasm-bindgen glue (\`parallel_task_executor.js\`) | ${kb(parts.glue.minifiedBytes)} | ${kb(parts.glue.gzipBytes)} |`,
		`| wrapper (${parts.wrapper.files.map(file => `\`${file}\``).join(', ')}) | ${kb(parts.wrapper.minifiedBytes)} | ${kb(parts.wrapper.gzipBytes)} |`,
		`| **whole package** | | **${kb(result.total)}** |`,
		'',
		`Target: under ${kb(result.targetBytes)} gzipped for the whole package: **${result.targetMet ? 'met' : 'not met'}** (${kb(result.total)}).`,
		'',
		'The smallest program that makes one chat call, bundled:',
		'',
		'| program | minified JS | gzipped (JS + wasm) | vs this package |',
		'|---|---|---|---|',
	];
	for (const program of programs) {
		lines.push(`| ${program.label} | ${kb(program.minifiedBytes)} | ${kb(program.gzipBytes)} | ${fmt(program.gzipBytes / ours.gzipBytes)}× |`);
	}

	lines.push('');
	return lines.join('\n');
}
