// The demo page's HTTP server on 127.0.0.1: www/ and the package files in pkg/
// as static files, /config.json with the page's defaults, and /v1/* passed
// through to the local model so the page reaches it on its own origin.
//
// The server never receives the API key a user types into the page, because the
// page sends it only to the endpoint the user entered. Requests to /v1/* lose their
// Authorization, x-api-key and Cookie headers before they go on, and nothing
// here logs request headers or bodies.

import {createReadStream} from 'node:fs';
import {stat} from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

const CONTENT_TYPES = {
	'.html': 'text/html; charset=utf-8',
	'.js': 'text/javascript; charset=utf-8',
	'.mjs': 'text/javascript; charset=utf-8',
	'.css': 'text/css; charset=utf-8',
	'.json': 'application/json; charset=utf-8',
	'.wasm': 'application/wasm',
	'.svg': 'image/svg+xml',
	'.png': 'image/png',
	'.ico': 'image/x-icon',
	'.txt': 'text/plain; charset=utf-8',
};

// Extensions of the files under /pkg/ that a browser needs. package.json and the type declarations are not served.
const PACKAGE_EXTENSIONS = new Set(['.js', '.wasm']);

// Headers that belong to one connection, or carry credentials the local model never needs.
const DROPPED_REQUEST_HEADERS = new Set([
	'authorization', 'x-api-key', 'cookie', 'host', 'connection', 'keep-alive',
	'proxy-authorization', 'proxy-connection', 'upgrade', 'te', 'trailer',
]);
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding']);

function sendJson(response, status, body) {
	const text = JSON.stringify(body);
	response.writeHead(status, {
		'content-type': 'application/json; charset=utf-8',
		'content-length': Buffer.byteLength(text),
		'cache-control': 'no-store',
	});
	response.end(text);
}

/** Resolves a URL path inside `root`, or returns null when it would leave it. */
function resolveInside(root, urlPath) {
	let decoded;
	try {
		decoded = decodeURIComponent(urlPath);
	} catch {
		return null;
	}

	if (decoded.includes('\0')) {
		return null;
	}

	const file = path.resolve(root, `.${path.posix.normalize(`/${decoded}`)}`);
	return file === root || file.startsWith(root + path.sep) ? file : null;
}

async function serveFile(request, response, file) {
	let info;
	try {
		info = await stat(file);
	} catch {
		sendJson(response, 404, {error: {message: `not found: ${request.url}`}});
		return;
	}

	if (!info.isFile()) {
		sendJson(response, 404, {error: {message: `not found: ${request.url}`}});
		return;
	}

	response.writeHead(200, {
		'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
		'content-length': info.size,
		'cache-control': 'no-store',
		'x-content-type-options': 'nosniff',
	});
	if (request.method === 'HEAD') {
		response.end();
		return;
	}

	createReadStream(file).pipe(response);
}

function proxy(request, response, target, log) {
	const headers = {};
	for (const [name, value] of Object.entries(request.headers)) {
		if (!DROPPED_REQUEST_HEADERS.has(name)) {
			headers[name] = value;
		}
	}

	const upstream = http.request({
		host: target.hostname,
		port: target.port,
		method: request.method,
		path: request.url,
		headers,
	}, upstreamResponse => {
		const responseHeaders = {};
		for (const [name, value] of Object.entries(upstreamResponse.headers)) {
			if (!DROPPED_RESPONSE_HEADERS.has(name)) {
				responseHeaders[name] = value;
			}
		}

		response.writeHead(upstreamResponse.statusCode ?? 502, responseHeaders);
		upstreamResponse.pipe(response);
	});

	// A page that cancels a call (a vote decided early, or Stop) closes its request.
	// Closing the upstream request too makes the model stop generating. The error
	// that this raises on the upstream request is not a failure of the model.
	let closedByClient = false;
	response.on('close', () => {
		if (!response.writableFinished) {
			closedByClient = true;
			upstream.destroy();
		}
	});

	upstream.on('error', error => {
		if (closedByClient) {
			return;
		}

		if (response.headersSent) {
			log(`demo server: ${request.method} ${request.url}: the local model's response broke off: ${error.message}`);
			response.destroy();
			return;
		}

		log(`demo server: ${request.method} ${request.url} to the local model failed: ${error.message}`);
		sendJson(response, 502, {error: {message: `the local model did not respond: ${error.message}`}});
	});

	request.pipe(upstream);
}

/**
Starts the demo server on 127.0.0.1.

@param {object} options
@param {string} options.wwwRoot folder of the page
@param {string} options.packageRoot the package folder, served under /pkg/
@param {string | null} options.modelUrl origin of the local model (no path), the target of /v1/*
@param {object} options.config defaults sent to the page as /config.json; must not contain secrets
@param {number} [options.port] 0 picks a free port
@param {(line: string) => void} [options.log]
@returns {Promise<{ url: string, port: number, close: () => Promise<void> }>}
*/
export async function startDemoServer({wwwRoot, packageRoot, modelUrl, config, port = 0, log = () => {}}) {
	const www = path.resolve(wwwRoot);
	const packageDirectory = path.resolve(packageRoot);
	const target = modelUrl ? new URL(modelUrl) : null;

	const server = http.createServer((request, response) => {
		const {pathname} = new URL(request.url, 'http://127.0.0.1');

		if (pathname === '/v1' || pathname.startsWith('/v1/')) {
			if (!target) {
				sendJson(response, 503, {error: {message: 'no local model runs behind this server; enter an endpoint in the page'}});
				return;
			}

			proxy(request, response, target, log);
			return;
		}

		if (request.method !== 'GET' && request.method !== 'HEAD') {
			response.setHeader('allow', 'GET, HEAD');
			sendJson(response, 405, {error: {message: `${request.method} is not allowed on ${pathname}`}});
			return;
		}

		if (pathname === '/config.json') {
			sendJson(response, 200, config);
			return;
		}

		if (pathname.startsWith('/pkg/')) {
			const file = resolveInside(packageDirectory, pathname.slice('/pkg/'.length));
			if (!file || !PACKAGE_EXTENSIONS.has(path.extname(file))) {
				sendJson(response, 404, {error: {message: `not found: ${pathname}`}});
				return;
			}

			serveFile(request, response, file);
			return;
		}

		const file = resolveInside(www, pathname === '/' ? 'index.html' : pathname.slice(1));
		if (!file) {
			sendJson(response, 404, {error: {message: `not found: ${pathname}`}});
			return;
		}

		serveFile(request, response, file);
	});

	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, '127.0.0.1', () => {
			server.off('error', reject);
			resolve();
		});
	});

	const actualPort = server.address().port;
	return {
		url: `http://127.0.0.1:${actualPort}/`,
		port: actualPort,
		close: () => new Promise(resolve => {
			server.close(() => resolve());
			server.closeAllConnections();
		}),
	};
}
