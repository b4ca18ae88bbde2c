// Loads the package's browser entry as a plain ES module (no bundler) and runs
// complete() and aggregate() against the provider base URL in the `api` query
// parameter. Writes the results as JSON into #result and sets the title to DONE,
// or writes the error and sets FAIL.
const output = document.querySelector('#result');

try {
	const {aggregate, complete, openai} = await import('/pkg/browser.js');

	// aggregate is synchronous, so it works as soon as the import resolves.
	const tally = aggregate(['42', '42.0', 'The answer is 42.', '41'], {extract: 'number'});

	const api = new URL(location.href).searchParams.get('api');
	const provider = openai({baseURL: api, model: 'scripted', apiKey: 'sk-browser-test-key'});
	const completion = await complete({provider, prompt: 'Say hi from the page'});

	output.textContent = JSON.stringify({aggregate: tally, complete: completion});
	document.title = 'DONE';
} catch (error) {
	output.textContent = JSON.stringify({error: {name: error.name, code: error.code ?? null, message: error.message}});
	document.title = 'FAIL';
}
