// A worker that runs the package's calls against the scripted provider server.
// __API_BASE__ is inlined by the test harness. The provider is created once at module
// scope, the way a Worker keeps its configuration between requests.
import {complete, openai, section, vote} from 'parallel-task-executor';

const provider = openai({baseURL: __API_BASE__, model: 'scripted', apiKey: 'sk-worker-test-key'});

/** Runs one call; the Response carries its result or its error as JSON. */
async function run(call) {
	try {
		return Response.json({ok: true, result: await call()});
	} catch (error) {
		return Response.json({ok: false, error: {name: error.name, code: error.code, message: error.message}});
	}
}

export default {
	async fetch(request) {
		const {pathname} = new URL(request.url);
		switch (pathname) {
			case '/complete': {
				return run(() => complete({provider, prompt: 'Say hi'}));
			}

			case '/section': {
				return run(() => section({
					provider,
					subtasks: [
						{id: 'schema', prompt: 'Design the table.'},
						{id: 'api', prompt: 'Write routes for {{schema}}.'},
						{id: 'ui', prompt: 'Sketch the page.'},
					],
					merge: 'ordered',
				}));
			}

			case '/vote': {
				return run(() => vote({provider, prompt: 'What is 6*7?', voters: 3, extract: 'number', rule: {atLeast: 3}}));
			}

			case '/console': {
				console.error('basic-worker console check');
				return new Response('logged');
			}

			default: {
				return new Response('not found', {status: 404});
			}
		}
	},
};
