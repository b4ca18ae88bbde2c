// Builds the test app into the directory the test passes as build.outDir. The
// browser entry uses top-level await, which the default build target allows.
import {fileURLToPath} from 'node:url';
import {defineConfig} from 'vite';

export default defineConfig({
	root: fileURLToPath(new URL('.', import.meta.url)),
	base: './',
	logLevel: 'warn',
	build: {
		emptyOutDir: true,
		reportCompressedSize: false,
	},
});
