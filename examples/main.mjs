#!/usr/bin/env node
// The main job: a vote and a sectioning job run with parallel-task-executor
// against the local model (started here and stopped at the end) or against any
// OpenAI-compatible or Anthropic endpoint. With --serve it serves the demo page
// in www/ instead. Run `node examples/main.mjs --help` for the options.

import path from 'node:path';
import process from 'node:process';
import {fileURLToPath} from 'node:url';
import {anthropic, openai} from 'parallel-task-executor';
import {startLocalModel} from '../scripts/local-model/index.mjs';
import {startDemoServer} from './lib/demo-server.mjs';
import {describeRule, helpText, parseOptions, redactUrl, UsageError} from './lib/options.mjs';
import {runSection} from './lib/section-job.mjs';
import {runVote} from './lib/vote-job.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const print = line => process.stdout.write(`${line}\n`);
const printError = line => process.stderr.write(`${line}\n`);

// Exit statuses: 1 for a failed run, 2 for bad usage, 128 + the signal number when interrupted.
const SIGNAL_EXIT = {SIGINT: 130, SIGTERM: 143};

function terminalWidth() {
	return process.stdout.isTTY ? Math.min(Math.max(process.stdout.columns || 80, 60), 110) : 80;
}

/** Creates the provider for the chosen endpoint. The API key comes from the environment only. */
function createProvider(options, {baseURL, temperature, maxTokens}) {
	const seed = options.seed ?? undefined;
	if (options.provider === 'anthropic') {
		const apiKey = process.env.ANTHROPIC_API_KEY;
		if (!apiKey) {
			throw new UsageError('ANTHROPIC_API_KEY is not set; the Anthropic Messages API needs a key');
		}

		return anthropic({baseURL, model: options.model, apiKey, maxTokens, temperature});
	}

	const apiKey = options.provider === 'openai' ? process.env.OPENAI_API_KEY || undefined : undefined;
	return openai({baseURL, model: options.model, apiKey, maxTokens, temperature, seed});
}

// The base URL is printed with its query values hidden, because some endpoints take a
// key or a signature in the query string.
function describeEndpoint(options, baseURL) {
	if (options.provider === 'local') {
		return `local model ${options.model} at ${redactUrl(baseURL)}`;
	}

	const keyName = options.provider === 'anthropic' ? 'ANTHROPIC_API_KEY' : 'OPENAI_API_KEY';
	const key = process.env[keyName] ? `key from ${keyName}` : `no key (${keyName} is not set)`;
	return `${options.provider} model ${options.model} at ${redactUrl(baseURL)}, ${key}`;
}

function errorText(error) {
	const code = error?.code ?? error?.name ?? 'Error';
	const status = error?.status ? ` (HTTP ${error.status})` : '';
	const hint = code === 'EADDRINUSE' ? '; pick another port with --port (0 picks a free one)' : '';
	return `error ${code}${status}: ${error?.message ?? String(error)}${hint}`;
}

async function main() {
	let options;
	try {
		options = parseOptions(process.argv.slice(2));
	} catch (error) {
		if (error instanceof UsageError) {
			printError(`error: ${error.message}`);
			return 2;
		}

		throw error;
	}

	if (options.help) {
		print(helpText());
		return 0;
	}

	const controller = new AbortController();
	let model = null;
	let server = null;
	let cleaning = null;
	const cleanup = () => {
		cleaning ??= (async () => {
			await server?.close();
			await model?.stop();
		})();
		return cleaning;
	};

	// Ctrl-C or SIGTERM: abort the calls in flight, stop the server and the model,
	// then exit. A second signal exits at once. The model module's exit hook
	// still kills a model server that is starting.
	let interrupted = false;
	const onSignal = async signal => {
		if (interrupted) {
			process.exit(SIGNAL_EXIT[signal]);
		}

		interrupted = true;
		printError(`\n${signal}: stopping`);
		controller.abort(new Error(`interrupted by ${signal}`));
		await cleanup();
		process.exit(SIGNAL_EXIT[signal]);
	};

	process.on('SIGINT', onSignal);
	process.on('SIGTERM', onSignal);

	try {
		let {baseUrl: baseURL} = options;
		if (options.provider === 'local') {
			print(`Starting the local model (SmolLM2-135M-Instruct, ${options.concurrency} slots, ${options.threads} thread${options.threads === 1 ? '' : 's'})`);
			const started = performance.now();
			model = await startLocalModel({slots: options.concurrency, threads: options.threads});
			baseURL = model.baseURL;
			print(`Local model ready at ${baseURL} (pid ${model.pid}, ${((performance.now() - started) / 1000).toFixed(1)} s)`);
		}

		if (options.serve) {
			await serve(options, {model, baseURL, setServer: started => {
				server = started;
			}});
			// Serves until a signal ends the process.
			await new Promise(() => {});
		}

		print(`Endpoint: ${describeEndpoint(options, baseURL)}`);
		if (options.only !== 'section') {
			print('');
			const provider = createProvider(options, {baseURL, temperature: options.temperature, maxTokens: options.maxTokens});
			await runVote({provider, options, signal: controller.signal, print, stream: process.stdout});
		}

		if (options.only !== 'vote') {
			print('');
			const provider = createProvider(options, {baseURL, temperature: 0, maxTokens: options.sectionMaxTokens});
			await runSection({provider, options, signal: controller.signal, print, stream: process.stdout, width: terminalWidth()});
			if (options.provider === 'local') {
				const threads = `${options.threads} CPU thread${options.threads === 1 ? '' : 's'}`;
				print(`Note: the local model computes all its slots on the same ${threads}, so parallel calls to it take about as long in total as the same calls one after another. A hosted API serves calls on separate hardware, where a parallel phase takes about as long as its longest call.`);
			}
		}

		return 0;
	} catch (error) {
		if (interrupted) {
			// The signal handler exits the process.
			await new Promise(() => {});
		}

		if (error instanceof UsageError) {
			printError(`error: ${error.message}`);
			return 2;
		}

		printError(errorText(error));
		return 1;
	} finally {
		if (!interrupted) {
			await cleanup();
		}
	}
}

async function serve(options, {model, baseURL, setServer}) {
	const config = {
		provider: options.provider,
		baseURL: options.provider === 'local' ? null : baseURL,
		model: options.model,
		concurrency: options.concurrency,
		prompt: options.prompt,
		voters: options.voters,
		rule: describeRule(options.rule),
		extract: options.extract,
		temperature: options.temperature,
		maxTokens: options.maxTokens,
		sectionMaxTokens: options.sectionMaxTokens,
		topic: options.topic,
	};
	const server = await startDemoServer({
		wwwRoot: path.join(repoRoot, 'www'),
		packageRoot: path.join(repoRoot, 'pkg'),
		modelUrl: model?.url ?? null,
		config,
		port: options.port,
		log: printError,
	});
	setServer(server);
	const behind = model ? `; /v1/* goes to the local model at ${model.url}` : `; the page calls ${redactUrl(baseURL)} directly`;
	print(`Demo page: ${server.url}${behind}`);
	print('Press Ctrl-C to stop.');
}

const status = await main().catch(error => {
	printError(errorText(error));
	return 1;
});
process.exit(status);
