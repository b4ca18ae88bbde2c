// A bundled app that imports the package by name. It runs complete() against the
// provider base URL in the `api` query parameter and writes the result as JSON
// into #result, then sets the title to DONE (or FAIL with the error).
import {complete, openai} from 'parallel-task-executor';

const output = document.querySelector('#result');

try {
	const api = new URL(location.href).searchParams.get('api');
	const provider = openai({baseURL: api, model: 'scripted'});
	const completion = await complete({provider, prompt: 'Say hi from the Vite app'});
	output.textContent = JSON.stringify({complete: completion});
	document.title = 'DONE';
} catch (error) {
	output.textContent = JSON.stringify({error: {name: error.name, code: error.code ?? null, message: error.message}});
	document.title = 'FAIL';
}
