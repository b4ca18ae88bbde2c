// Removes the global fetch before the package loads, as in a host that has none,
// then runs complete(). Prints the rejection as JSON on stdout, and exits with 1 if
// the call resolved.
delete globalThis.fetch;

const {complete, openai} = await import('parallel-task-executor');
const provider = openai({baseURL: 'http://127.0.0.1:9/v1', model: 'scripted'});

try {
	await complete({provider, prompt: 'Say hi'});
	process.stdout.write(JSON.stringify({resolved: true}));
	process.exitCode = 1;
} catch (error) {
	process.stdout.write(JSON.stringify({
		isError: error instanceof Error,
		name: error.name,
		code: error.code ?? null,
		message: error.message,
	}));
}
